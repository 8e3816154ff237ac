// Package metrics exports an example app's OpenTelemetry metrics to
// Prometheus as monitoring/alerts.yml expects them: the OpenTelemetry
// Prometheus exporter with the UnderscoreEscapingWithSuffixes translation
// strategy, no namespace, on a registry of the app's own.
package metrics

import (
	"context"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// Exporter is the meter an app records with and the handler that serves
// what it recorded (GET /metrics).
type Exporter struct {
	// Meter is what Broadcast, flags and the token endpoint are given.
	Meter metric.Meter
	// Handler serves the Prometheus text format.
	Handler http.Handler
	mp      *sdkmetric.MeterProvider
}

// New returns an Exporter whose meter is named name (the instrumentation
// scope, such as the program's import path).
func New(name string) (*Exporter, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes))
	if err != nil {
		return nil, fmt.Errorf("metrics exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	return &Exporter{Meter: mp.Meter(name), Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), mp: mp}, nil
}

// Shutdown stops the meter provider; the handler then serves nothing new.
func (e *Exporter) Shutdown(ctx context.Context) error { return e.mp.Shutdown(ctx) }
