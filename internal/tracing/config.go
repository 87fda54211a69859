package tracing

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Exporters and protocols Config accepts.
const (
	ExporterOTLP = "otlp"
	ExporterNone = "none"

	ProtocolHTTP = "http/protobuf"
	ProtocolGRPC = "grpc"
)

// Samplers Config accepts: the names of OTEL_TRACES_SAMPLER.
const (
	SamplerAlwaysOn                = "always_on"
	SamplerAlwaysOff               = "always_off"
	SamplerTraceIDRatio            = "traceidratio"
	SamplerParentBasedAlwaysOn     = "parentbased_always_on"
	SamplerParentBasedAlwaysOff    = "parentbased_always_off"
	SamplerParentBasedTraceIDRatio = "parentbased_traceidratio"
)

// DefaultRatio is the share of requests an entry point samples by default
// (OTEL_TRACES_SAMPLER_ARG): one in a hundred. A sampled hold costs about
// six spans built and exported, tens of µs of CPU, against 30-40 µs for a
// whole hold; at 1% that is well under the 10% the hot paths may lose to
// tracing, and at 40,000 holds a second still 400 traces a second.
const DefaultRatio = 0.01

// Config configures tracing in one process. FromEnv reads it from the
// standard OTEL_* variables; the zero value, after Defaults, is off.
type Config struct {
	// Exporter is "otlp" (export spans over OTLP) or "none" (tracing off:
	// nothing is sampled, no span is made, no header is added). Default:
	// "otlp" when Endpoint is set or FromEnv found an OTLP endpoint
	// variable, "none" otherwise. OTEL_TRACES_EXPORTER.
	Exporter string
	// Protocol is the OTLP transport: "http/protobuf" (default) or "grpc".
	// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL.
	Protocol string
	// Endpoint is the OTLP traces endpoint as a URL (for HTTP with its path,
	// e.g. http://collector:4318/v1/traces). Empty: the exporter reads the
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT
	// variable itself, as it does every other OTEL_EXPORTER_OTLP_* variable
	// (headers, timeout, compression, certificates).
	Endpoint string
	// Sampler is how entry points (the edge's HTTP handler, a NATS client
	// such as the bench) decide whether a request is traced; every hop
	// behind them follows their decision through the trace context they
	// send on. parentbased_*: a request that arrives with a W3C traceparent
	// keeps its caller's decision; without one, the rest of the name
	// decides. Default "parentbased_traceidratio". OTEL_TRACES_SAMPLER.
	Sampler string
	// Ratio is the share of requests the *traceidratio samplers trace,
	// 0-1. Default DefaultRatio (so 0 is the default: none is the
	// always_off samplers). OTEL_TRACES_SAMPLER_ARG; FromEnv turns an
	// explicit 0 into the always_off form of the sampler.
	Ratio float64
	// ServiceName names the process in its spans (service.name). Default
	// "ticketing". OTEL_SERVICE_NAME; OTEL_RESOURCE_ATTRIBUTES adds more.
	ServiceName string
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Exporter == "" {
		c.Exporter = ExporterNone
		if c.Endpoint != "" {
			c.Exporter = ExporterOTLP
		}
	}
	if c.Protocol == "" {
		c.Protocol = ProtocolHTTP
	}
	if c.Sampler == "" {
		c.Sampler = SamplerParentBasedTraceIDRatio
	}
	if c.Ratio == 0 && (c.Sampler == SamplerTraceIDRatio || c.Sampler == SamplerParentBasedTraceIDRatio) {
		c.Ratio = DefaultRatio
	}
	if c.ServiceName == "" {
		c.ServiceName = "ticketing"
	}
}

// Validate checks the config.
func (c *Config) Validate() error {
	switch c.Exporter {
	case ExporterOTLP, ExporterNone:
	default:
		return fmt.Errorf("tracing: exporter %q: want otlp or none", c.Exporter)
	}
	switch c.Protocol {
	case ProtocolHTTP, ProtocolGRPC:
	default:
		return fmt.Errorf("tracing: OTLP protocol %q: want http/protobuf or grpc", c.Protocol)
	}
	switch c.Sampler {
	case SamplerAlwaysOn, SamplerAlwaysOff, SamplerTraceIDRatio,
		SamplerParentBasedAlwaysOn, SamplerParentBasedAlwaysOff, SamplerParentBasedTraceIDRatio:
	default:
		return fmt.Errorf("tracing: sampler %q: want one of always_on, always_off, traceidratio and their parentbased_ forms", c.Sampler)
	}
	if !(c.Ratio >= 0 && c.Ratio <= 1) {
		return fmt.Errorf("tracing: sampling ratio %v: want 0-1", c.Ratio)
	}
	if c.ServiceName == "" {
		return errors.New("tracing: service name required")
	}
	return nil
}

// rootRatio is the share of requests without a caller's decision that an
// entry point traces.
func (c *Config) rootRatio() float64 {
	switch c.Sampler {
	case SamplerAlwaysOn, SamplerParentBasedAlwaysOn:
		return 1
	case SamplerAlwaysOff, SamplerParentBasedAlwaysOff:
		return 0
	}
	return c.Ratio
}

// parentBased says whether an entry point keeps a caller's decision.
func (c *Config) parentBased() bool { return strings.HasPrefix(c.Sampler, "parentbased_") }

// FromEnv reads a Config from the standard OpenTelemetry variables through
// getenv (os.Getenv): OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER,
// OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL, OTEL_TRACES_SAMPLER[_ARG],
// OTEL_SERVICE_NAME (service, when that is not set). Tracing is on only
// when an OTLP endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) and not turned off
// (OTEL_TRACES_EXPORTER=none, OTEL_SDK_DISABLED=true): unlike the SDK's
// own default, a process never exports to localhost:4318 unasked. The
// endpoint, headers, timeout, compression and TLS variables are read by
// the exporter itself. The result has its defaults and is validated.
func FromEnv(getenv func(string) string, service string) (Config, error) {
	env := func(k string) string { return strings.TrimSpace(getenv(k)) }
	c := Config{ServiceName: env("OTEL_SERVICE_NAME"), Sampler: strings.ToLower(env("OTEL_TRACES_SAMPLER"))}
	if c.ServiceName == "" {
		c.ServiceName = service
	}
	endpoint := env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || env("OTEL_EXPORTER_OTLP_ENDPOINT") != ""
	switch exp := strings.ToLower(env("OTEL_TRACES_EXPORTER")); {
	case strings.EqualFold(env("OTEL_SDK_DISABLED"), "true"):
		c.Exporter = ExporterNone
	case exp == "" && endpoint, exp == ExporterOTLP && endpoint:
		c.Exporter = ExporterOTLP
	case exp == "", exp == ExporterNone, exp == ExporterOTLP:
		c.Exporter = ExporterNone // otlp without an endpoint: off, as documented
	default:
		return c, fmt.Errorf("tracing: OTEL_TRACES_EXPORTER=%q: want otlp or none", exp)
	}
	c.Protocol = strings.ToLower(env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"))
	if c.Protocol == "" {
		c.Protocol = strings.ToLower(env("OTEL_EXPORTER_OTLP_PROTOCOL"))
	}
	c.Defaults()
	if arg := env("OTEL_TRACES_SAMPLER_ARG"); arg != "" {
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil {
			return c, fmt.Errorf("tracing: OTEL_TRACES_SAMPLER_ARG=%q: %w", arg, err)
		}
		c.Ratio = r
		if r == 0 { // Ratio 0 means the default: say "none" by the sampler
			switch c.Sampler {
			case SamplerTraceIDRatio:
				c.Sampler = SamplerAlwaysOff
			case SamplerParentBasedTraceIDRatio:
				c.Sampler = SamplerParentBasedAlwaysOff
			}
		}
	}
	return c, c.Validate()
}
