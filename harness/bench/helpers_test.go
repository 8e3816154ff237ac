package bench_test

import (
	"net"
	"runtime"
)

func testingGOMAXPROCS() int { return runtime.GOMAXPROCS(0) }

func newLoopbackListener() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
