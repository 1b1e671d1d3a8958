//! JSON log lines as tracing-subscriber's JSON format writes them with `flatten_event(true)` — the same
//! keys in the same order (`timestamp`, `level`, the event's fields, `target`, then `span` and `spans`
//! when the event is inside spans) — written straight into the line, without the serde map, the
//! timestamp's own `String` and the re-parsing of span fields that format does. The gateway writes one
//! such line per request, and that format was the largest user-space cost of a proxied request in
//! `perf` (`bench/gateway.sh`).

use std::fmt::{self, Write};
use supactl_common::json_text::{string, Escaped};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event format of every JSON log layer (stderr off a terminal, the services' files).
pub struct JsonLines;

impl<S> FormatEvent<S, JsonFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        write!(
            w,
            "{{\"timestamp\":\"{}\",\"level\":\"{}\"",
            humantime::format_rfc3339_micros(std::time::SystemTime::now()),
            meta.level().as_str()
        )?;
        let mut fields = Fields {
            w: &mut w,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        w.write_str(",\"target\":")?;
        string(&mut w, meta.target())?;
        if let Some(scope) = ctx.event_scope() {
            let spans: Vec<_> = scope.from_root().collect();
            if let Some(leaf) = spans.last() {
                w.write_str(",\"span\":")?;
                span(&mut w, leaf)?;
                w.write_str(",\"spans\":[")?;
                for (i, s) in spans.iter().enumerate() {
                    if i > 0 {
                        w.write_char(',')?;
                    }
                    span(&mut w, s)?;
                }
                w.write_char(']')?;
            }
        }
        w.write_str("}\n")
    }
}

/// A span as `{<its fields>,"name":"…"}`: its fields are already a JSON object ([`JsonFields`]).
fn span<S>(w: &mut Writer<'_>, span: &tracing_subscriber::registry::SpanRef<'_, S>) -> fmt::Result
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let ext = span.extensions();
    let inner = ext
        .get::<FormattedFields<JsonFields>>()
        .map(|f| f.fields.trim())
        .and_then(|f| f.strip_prefix('{')?.strip_suffix('}'))
        .map(str::trim)
        .unwrap_or("");
    w.write_char('{')?;
    if !inner.is_empty() {
        w.write_str(inner)?;
        w.write_char(',')?;
    }
    w.write_str("\"name\":")?;
    string(w, span.name())?;
    w.write_char('}')
}

/// Writes each field as `,"name":value`, as serde_json would write the value.
struct Fields<'a, 'w> {
    w: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn entry(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = (|| {
                self.w.write_char(',')?;
                string(self.w, field.name())?;
                self.w.write_char(':')?;
                value(self.w)
            })();
        }
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.entry(field, |w| string(w, value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field, |w| write!(w, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field, |w| write!(w, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field, |w| write!(w, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // serde_json's form: the shortest round-trip digits (`1.0`, `1e-7`), null when not finite
        self.entry(field, |w| match serde_json::Number::from_f64(value) {
            Some(n) => write!(w, "{n}"),
            None => w.write_str("null"),
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.entry(field, |w| {
            w.write_char('"')?;
            write!(Escaped(&mut *w), "{value:?}")?;
            w.write_char('"')
        });
    }
}

#[cfg(test)]
mod tests {
    use super::JsonLines;
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What `emit` logs, once through tracing-subscriber's own JSON format and once through ours.
    fn both(emit: impl Fn()) -> (String, String) {
        let theirs = Lines::default();
        let ours = Lines::default();
        let (t, o) = (theirs.clone(), ours.clone());
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(move || t.clone()),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
                    .event_format(JsonLines)
                    .with_writer(move || o.clone()),
            );
        tracing::subscriber::with_default(subscriber, emit);
        let text = |l: Lines| String::from_utf8(l.0.lock().unwrap().clone()).unwrap();
        (text(theirs), text(ours))
    }

    /// Byte for byte the same lines but for the timestamps, which may differ by the microseconds
    /// between the two layers.
    fn same_lines(theirs: &str, ours: &str) {
        let (t, o): (Vec<_>, Vec<_>) = (theirs.lines().collect(), ours.lines().collect());
        assert_eq!(t.len(), o.len(), "{theirs}\n{ours}");
        // {"timestamp":"2026-12-08T03:25:44.662502Z",
        let stamp = 14..41;
        for (t, o) in t.iter().zip(&o) {
            assert_eq!(t[41..], o[41..]);
            let at = |l: &str| humantime::parse_rfc3339(&l[stamp.clone()]).unwrap();
            let apart = at(o).duration_since(at(t)).unwrap_or_default();
            assert!(apart.as_secs() < 1, "{t}\n{o}");
        }
    }

    #[test]
    fn lines_match_tracing_subscribers_json_format() {
        let (theirs, ours) = both(|| {
            tracing::info!(target: "supactl::access", request_id = "ab\"c\\\n\u{1}é", status = 200u16,
                latency_ms = 0.25, big = -7i64, ok = true, float_whole = 3.0, nan = f64::NAN, "done {}", 1);
            tracing::warn!(err = ?std::io::Error::other("tab\there"), "plain");
            tracing::error!(
                tiny = 1e-7,
                huge = 1e300,
                wide = 170141183460469231731687303715884105727i128
            );
            let outer = tracing::info_span!("outer", project = "abc", n = 3);
            let _o = outer.enter();
            let inner = tracing::info_span!("inner");
            let _i = inner.enter();
            tracing::info!(x = 1, "in spans");
        });
        same_lines(&theirs, &ours);
        assert!(
            ours.contains(
                "\"spans\":[{\"n\":3,\"project\":\"abc\",\"name\":\"outer\"},{\"name\":\"inner\"}]"
            ),
            "{ours}"
        );
    }
}
