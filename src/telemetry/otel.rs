//! Traces: the spans of every RPC and of its database work, as OpenTelemetry
//! spans exported over OTLP/gRPC (opentelemetry-otlp's tonic exporter), the
//! caller's W3C `traceparent` continued.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::{
    propagation::Extractor,
    trace::{TraceContextExt, TracerProvider as _},
};
use opentelemetry_sdk::{
    error::OTelSdkResult,
    propagation::TraceContextPropagator,
    trace::{Sampler, SdkTracerProvider, SpanData, SpanExporter},
    Resource,
};

use crate::config::TracesConfig;

/// Whether spans are exported (then calls read `traceparent`).
static ON: AtomicBool = AtomicBool::new(false);

/// Flushes the spans not yet sent when the command ends.
pub struct TraceGuard {
    provider: SdkTracerProvider,
}

impl Drop for TraceGuard {
    fn drop(&mut self) {
        ON.store(false, Ordering::Relaxed);
        // The batch's thread sends what is left; waiting for it must not
        // hold a runtime thread that the export itself needs.
        let provider = self.provider.clone();
        let flushed = std::thread::spawn(move || provider.shutdown());
        if let Ok(Err(error)) = flushed.join() {
            tracing::warn!(%error, "traces: the last spans were not sent");
        }
    }
}

/// The exporter runs on the batch processor's own thread, outside the
/// runtime, while tonic's transport needs the runtime's reactor: each
/// export runs on the runtime through its handle.
#[derive(Debug)]
struct OnRuntime {
    inner: opentelemetry_otlp::SpanExporter,
    runtime: tokio::runtime::Handle,
}

impl SpanExporter for OnRuntime {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        let sent = self.runtime.block_on(self.inner.export(batch));
        if let Err(error) = &sent {
            // Once a minute at most: a collector that is down fails every
            // batch.
            static LAST_WARNED: std::sync::Mutex<Option<std::time::Instant>> =
                std::sync::Mutex::new(None);
            let mut last = LAST_WARNED.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_none_or(|at| at.elapsed() >= std::time::Duration::from_secs(60)) {
                *last = Some(std::time::Instant::now());
                tracing::warn!(%error, spans, "traces: spans could not be sent to the collector");
            }
        }
        sent
    }

    fn shutdown_with_timeout(&self, timeout: std::time::Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The tracer of `config`, and the guard that flushes it; `None` when no
/// endpoint is set. Call it inside the runtime.
pub fn tracer(
    config: &TracesConfig,
) -> anyhow::Result<Option<(opentelemetry_sdk::trace::Tracer, TraceGuard)>> {
    use opentelemetry_otlp::WithExportConfig;
    let Some(endpoint) = &config.otlp_endpoint else {
        return Ok(None);
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint.clone())
        .build()
        .map_err(|error| anyhow::anyhow!("`traces.otlp_endpoint`: {error}"))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(OnRuntime {
            inner: exporter,
            runtime: tokio::runtime::Handle::try_current()?,
        })
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            config.sample_ratio,
        ))))
        .with_resource(
            Resource::builder()
                .with_service_name(config.service_name.clone())
                .build(),
        )
        .build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let tracer = provider.tracer("gardien");
    ON.store(true, Ordering::Relaxed);
    Ok(Some((tracer, TraceGuard { provider })))
}

/// Makes `span` a child of the caller's span named by the request's W3C
/// `traceparent` (and `tracestate`), when traces are exported.
pub fn continue_caller(span: &tracing::Span, headers: &http::HeaderMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&Headers(headers))
    });
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}
