//! `traceparent` / `tracestate` inputs, the W3C oracle, and property 2: a valid incoming
//! `traceparent` is continued, anything else starts a new trace.

use diag_core::Diag;
use diag_core::request::RequestView;
use diag_core::trace::{TraceContext, outgoing_traceparent, outgoing_tracestate};
use proptest::prelude::*;
use proptest::sample::Index;
use std::collections::BTreeSet;
use std::sync::LazyLock;

use crate::requests::*;
use crate::support::*;

pub(crate) fn valid_traceparent() -> BoxedStrategy<Vec<u8>> {
    (
        "[0-9a-f]{32}".prop_filter("all-zero trace id", |t| t != &"0".repeat(32)),
        "[0-9a-f]{16}".prop_filter("all-zero span id", |s| s != &"0".repeat(16)),
        "[0-9a-f]{2}",
    )
        .prop_map(|(t, s, f)| format!("00-{t}-{s}-{f}").into_bytes())
        .boxed()
}

pub(crate) fn traceparent_strategy() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        4 => valid_traceparent(),
        // A later version is read by its first four fields; version 00 has no more.
        2 => (
            prop_oneof![
                3 => "[0-9a-f]{2}".prop_filter("ff is no version", |v| v != "ff"),
                1 => Just("00".to_owned()),
            ],
            valid_traceparent(),
            prop_oneof![Just(String::new()), "-[ -~]{0,20}", "[ -~]{1,4}"],
        )
            .prop_map(|(version, mut tp, tail)| {
                tp[..2].copy_from_slice(version.as_bytes());
                tp.extend_from_slice(tail.as_bytes());
                tp
            }),
        6 => valid_traceparent().prop_flat_map(mutate),
        1 => valid_traceparent().prop_map(|mut tp| {
            tp[3..35].fill(b'0');
            tp
        }),
        1 => valid_traceparent().prop_map(|mut tp| {
            tp[36..52].fill(b'0');
            tp
        }),
        1 => valid_traceparent().prop_map(|mut tp| {
            tp[..2].copy_from_slice(b"ff");
            tp
        }),
        1 => (valid_traceparent(), "[ \t]{0,3}", "[ \t]{0,3}").prop_map(|(tp, a, b)| {
            [a.as_bytes(), &tp, b.as_bytes()].concat()
        }),
        1 => valid_traceparent().prop_map(|tp| tp.to_ascii_uppercase()),
        2 => generic_value(),
    ]
    .boxed()
}

/// The W3C rules for an incoming `traceparent` (version `00` exactly 55 characters; a later
/// version read by its first four fields; `ff` invalid; lower-case hex; neither id all
/// zeros), white space around the value ignored. `(trace id hex, parent span hex, sampled)`.
pub(crate) fn w3c_parent(value: &[u8]) -> Option<(String, String, bool)> {
    let v = value.trim_ascii();
    if v.len() < 55 {
        return None;
    }
    let version = &v[..2];
    if !is_lower_hex(version) || version == b"ff" {
        return None;
    }
    if version == b"00" && v.len() != 55 {
        return None;
    }
    if v.len() > 55 && v[55] != b'-' {
        return None;
    }
    if v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let (trace, span, flags) = (&v[3..35], &v[36..52], &v[53..55]);
    if !is_lower_hex(trace) || !is_lower_hex(span) || !is_lower_hex(flags) {
        return None;
    }
    if trace.iter().all(|b| *b == b'0') || span.iter().all(|b| *b == b'0') {
        return None;
    }
    let flags = u8::from_str_radix(std::str::from_utf8(flags).ok()?, 16).ok()?;
    Some((
        String::from_utf8(trace.to_vec()).ok()?,
        String::from_utf8(span.to_vec()).ok()?,
        flags & 1 == 1,
    ))
}

/// A `tracestate` input: header lines, and the normalised value diag must pass on when it
/// continues the trace, if the input is one whose outcome the test knows.
#[derive(Clone, Debug)]
pub(crate) struct TraceStateInput {
    pub(crate) lines: Vec<Bytes>,
    pub(crate) expected: Option<Option<String>>,
}

pub(crate) fn tracestate_strategy() -> BoxedStrategy<TraceStateInput> {
    let key = prop_oneof![
        3 => "[a-z][a-z0-9_*/-]{0,10}",
        1 => "[a-z0-9][a-z0-9_*/-]{0,6}@[a-z][a-z0-9_*/-]{0,5}",
    ];
    // `chr` without `,` and `=`, not ending in a space.
    let value = "[ -+\\--<>-~]{0,16}[!-+\\--<>-~]";
    let members = prop::collection::btree_map(key, value, 1..8);
    let pad = "[ \t]{0,2}";
    prop_oneof![
        // Valid: passed on normalised (no white space, members in order).
        4 => (members.clone(), prop::collection::vec(pad, 8), any::<Index>()).prop_map(
            |(members, pads, split)| {
                let members: Vec<String> =
                    members.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
                let expected = members.join(",");
                let padded: Vec<String> = members
                    .iter()
                    .zip(pads.iter().cycle())
                    .map(|(m, p)| format!("{p}{m}{p}"))
                    .collect();
                // Some states arrive on two header lines.
                let at = split.index(padded.len() + 1);
                let (a, b) = padded.split_at(at);
                let lines = [a, b]
                    .iter()
                    .filter(|part| !part.is_empty())
                    .map(|part| Bytes(part.join(",").into_bytes()))
                    .collect();
                TraceStateInput { lines, expected: Some(Some(expected)) }
            }
        ),
        // A repeated key discards the whole header.
        1 => members.clone().prop_map(|members| {
            let mut list: Vec<String> =
                members.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
            list.push(list[0].clone());
            TraceStateInput {
                lines: vec![Bytes(list.join(",").into_bytes())],
                expected: Some(None),
            }
        }),
        // More than 32 members discards the whole header.
        1 => (33usize..40).prop_map(|n| TraceStateInput {
            lines: vec![Bytes(
                (0..n).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(",").into_bytes(),
            )],
            expected: Some(None),
        }),
        // Over 512 bytes: trimmed, never passed on whole.
        1 => (5usize..9, 130usize..250).prop_map(|(n, len)| TraceStateInput {
            lines: vec![Bytes(
                (0..n)
                    .map(|i| format!("k{i}={}", "x".repeat(len)))
                    .collect::<Vec<_>>()
                    .join(",")
                    .into_bytes(),
            )],
            expected: None,
        }),
        // One byte off a valid one, or anything.
        2 => members.prop_flat_map(|members| {
            let list: Vec<String> =
                members.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
            mutate(list.join(",").into_bytes())
        })
        .prop_map(|v| TraceStateInput { lines: vec![Bytes(v)], expected: None }),
        2 => generic_value().prop_map(|v| TraceStateInput { lines: vec![Bytes(v)], expected: None }),
    ]
    .boxed()
}

/// What any `tracestate` diag passes on must look like: at most 512 bytes of `key=value`
/// members joined by `,`, no white space around them, no key twice, at most 32 members.
pub(crate) fn check_passed_on_tracestate(ts: &str) -> Result<(), String> {
    let members: Vec<&str> = ts.split(',').collect();
    let mut keys = BTreeSet::new();
    let ok = ts.len() <= 512
        && !ts.is_empty()
        && ts.bytes().all(|b| (0x20..0x7f).contains(&b))
        && members.len() <= 32
        && members.iter().all(|m| {
            m.trim() == *m
                && m.split_once('=').is_some_and(|(k, v)| {
                    !k.is_empty() && !v.is_empty() && !v.contains('=') && keys.insert(k)
                })
        });
    if ok {
        Ok(())
    } else {
        Err(format!("malformed tracestate passed on: {ts:?}"))
    }
}

// Property 2: a valid incoming traceparent is continued, anything else starts a new trace

pub(crate) static SAMPLE_ALL: LazyLock<Diag> =
    LazyLock::new(|| Diag::builder().sampling_ratio(1.0).build().expect("a diag"));
pub(crate) static SAMPLE_NONE: LazyLock<Diag> =
    LazyLock::new(|| Diag::builder().sampling_ratio(0.0).build().expect("a diag"));

proptest! {
    #![proptest_config(config(256))]

    /// Property 2.
    #[test]
    fn a_valid_traceparent_is_continued_and_nothing_else(
        tp in traceparent_strategy().prop_map(Bytes),
        state in prop::option::of(tracestate_strategy()),
        sample_all in any::<bool>(),
    ) {
        let diag: &Diag = if sample_all { &SAMPLE_ALL } else { &SAMPLE_NONE };
        let mut lines = vec![("traceparent".to_owned(), tp.clone())];
        if let Some(state) = &state {
            lines.extend(state.lines.iter().map(|l| ("tracestate".to_owned(), l.clone())));
        }
        let headers = RawHeaders(lines);
        let begin = || diag.begin(&RequestView {
            method: "GET",
            route: Some("/"),
            uri: "/",
            headers: &headers,
            peer: &|| None,
        });
        let guard = begin();
        let trace = *guard.trace();
        let passed_on = {
            let _entered = guard.enter();
            prop_assert_eq!(
                outgoing_traceparent().map(|t| t.as_str().to_owned()),
                Some(trace.to_traceparent())
            );
            outgoing_tracestate().map(|s| s.as_str().to_owned())
        };
        let mut response: Vec<(String, String)> = Vec::new();
        prop_assert!(guard.finish(200, &mut response).is_none());
        let written = one(&response, "traceparent")?.expect("a traceparent");
        check_written_traceparent(written).map_err(TestCaseError::fail)?;
        prop_assert_eq!(written, trace.to_traceparent());
        // What diag writes, it reads back as the same context.
        prop_assert_eq!(
            TraceContext::from_traceparent(written.as_bytes()),
            Some(trace)
        );
        let trace_hex = trace.trace_id.to_string();

        match w3c_parent(&tp.0) {
            Some((parent_trace, parent_span, sampled)) => {
                prop_assert_eq!(&trace_hex, &parent_trace, "the caller's trace is continued");
                prop_assert_ne!(trace.span_id.to_string(), parent_span, "a span of its own");
                prop_assert_eq!(trace.sampled, sampled, "the caller's sampled flag is kept");
                if let Some(ts) = &passed_on {
                    check_passed_on_tracestate(ts).map_err(TestCaseError::fail)?;
                }
                match state.as_ref().and_then(|s| s.expected.clone()) {
                    Some(expected) => prop_assert_eq!(passed_on, expected),
                    None if state.is_none() => prop_assert_eq!(passed_on, None),
                    None => {}
                }
            }
            None => {
                prop_assert_ne!(trace.trace_id.0, [0; 16]);
                prop_assert_ne!(trace.span_id.0, [0; 8]);
                prop_assert_eq!(trace.sampled, sample_all, "a new trace follows the ratio");
                if let Some(candidate) = tp.0.get(3..35) {
                    prop_assert!(
                        !candidate.eq_ignore_ascii_case(trace_hex.as_bytes()),
                        "an invalid traceparent's trace id was taken"
                    );
                }
                prop_assert_eq!(passed_on, None, "no tracestate without a continued trace");
                // Fresh: the same invalid header gives another trace next time.
                let again = begin();
                prop_assert_ne!(again.trace().trace_id, trace.trace_id);
                let _ = again.finish(200, &mut ());
            }
        }
    }
}
