package realtime

// Version is this library's version.
const Version = "0.1.0"
