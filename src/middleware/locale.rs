//! The language the caller asked for (`accept-language`: French or English,
//! English by default), kept for the whole call in a task-local so that
//! `grpc::status` can word the customer's `LocalizedMessage` in it. An error
//! about a known account overrides it with the account's language
//! ([`in_language`], from `domain::Error::ForAccount`).

use std::task::{Context, Poll};

use http::{Request, Response};
use tower::{Layer, Service};

use super::BoxFuture;
use crate::domain::types::Locale;

pub const HEADER: &str = "accept-language";

tokio::task_local! {
    static LANGUAGE: Locale;
}

/// The language of the current call: the account's inside [`in_language`],
/// else the request's, else English (outside any call).
pub fn current() -> Locale {
    LANGUAGE.try_with(|locale| *locale).unwrap_or_default()
}

/// Runs `f` with `locale` as the current language.
pub fn in_language<R>(locale: Locale, f: impl FnOnce() -> R) -> R {
    LANGUAGE.sync_scope(locale, f)
}

/// Runs `future` with `locale` as the current language.
pub async fn scope<F: std::future::Future>(locale: Locale, future: F) -> F::Output {
    LANGUAGE.scope(locale, future).await
}

/// The supported language the header prefers (RFC 9110 §12.5.4): the
/// highest weight wins, the first listed on a tie; `*`, unsupported
/// languages and `q=0` count for nothing. English when none is supported.
pub fn parse(header: &str) -> Locale {
    let mut best: Option<(u32, Locale)> = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or_default().trim();
        let primary = tag.split('-').next().unwrap_or_default();
        let locale = if primary.eq_ignore_ascii_case("fr") {
            Locale::Fr
        } else if primary.eq_ignore_ascii_case("en") {
            Locale::En
        } else {
            continue;
        };
        let weight = parts
            .find_map(|param| {
                let (name, value) = param.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("q")
                    .then(|| quality(value.trim()))
            })
            .unwrap_or(Some(1000));
        let Some(weight) = weight.filter(|w| *w > 0) else {
            continue;
        };
        if best.is_none_or(|(top, _)| weight > top) {
            best = Some((weight, locale));
        }
    }
    best.map(|(_, locale)| locale).unwrap_or_default()
}

/// A quality value in thousandths; `None` when malformed.
fn quality(value: &str) -> Option<u32> {
    let number: f64 = value.parse().ok()?;
    (0.0..=1.0)
        .contains(&number)
        .then(|| (number * 1000.0).round() as u32)
}

#[derive(Debug, Clone, Copy, Default)]
pub struct LocaleLayer;

impl<S> Layer<S> for LocaleLayer {
    type Service = LocaleService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        LocaleService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct LocaleService<S> {
    inner: S,
}

impl<S, B, R> Service<Request<B>> for LocaleService<S>
where
    S: Service<Request<B>, Response = Response<R>> + Send,
    S::Future: Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let locale = request
            .headers()
            .get(HEADER)
            .and_then(|value| value.to_str().ok())
            .map(parse)
            .unwrap_or_default();
        // Inner layers may answer from `call` itself as well as from the future.
        let future = LANGUAGE.sync_scope(locale, || self.inner.call(request));
        Box::pin(LANGUAGE.scope(locale, future))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preferred_supported_language_wins() {
        assert_eq!(parse("fr-FR,fr;q=0.9"), Locale::Fr);
        assert_eq!(parse("fr"), Locale::Fr);
        assert_eq!(parse("FR-ca"), Locale::Fr);
        assert_eq!(parse("en-US,fr;q=0.5"), Locale::En);
        assert_eq!(parse("de;q=1, fr;q=0.8, en;q=0.2"), Locale::Fr);
        assert_eq!(parse("fr;q=0.5, en;q=0.5"), Locale::Fr);
        assert_eq!(parse("en;q=0.1, fr;q=0.9"), Locale::Fr);
    }

    #[test]
    fn anything_else_is_english() {
        for header in [
            "",
            "*",
            "de-DE,de;q=0.9",
            "fr;q=0",
            "fr;q=abc",
            "fr;q=2",
            ";;,,",
        ] {
            assert_eq!(parse(header), Locale::En, "{header:?}");
        }
    }

    #[test]
    fn an_override_applies_inside_only() {
        assert_eq!(current(), Locale::En);
        assert_eq!(in_language(Locale::Fr, current), Locale::Fr);
        assert_eq!(current(), Locale::En);
    }
}
