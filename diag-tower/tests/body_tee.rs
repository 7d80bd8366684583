//! Property tests of the body tee: [`DiagBody`] wrapping an inner `http_body::Body`, with
//! or without a debug request's [`BodyTap`](diag_core::debug::BodyTap).
//!
//! The guarantee under test: the reader (the handler, or the client for a response)
//! sees exactly the frames the inner body produced; the capture tees them, never
//! consuming or re-buffering them; every capture has a cap and is marked truncated
//! beyond it; a body dropped before its end is stored incomplete and leaks nothing.
//!
//! Each case builds the same scripted body twice: one is polled bare (the reference),
//! the other through `DiagBody`, in lockstep, one poll each, and every poll result,
//! `size_hint` and `is_end_stream` must agree.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::buf::Chain;
use bytes::{Buf, Bytes};
use diag_core::Diag;
use diag_core::debug::{Capture, CapturedBody};
use diag_core::request::RequestView;
use diag_tower::DiagBody;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Empty;
use proptest::prelude::*;
use proptest::test_runner::Config;

const TOKEN: &str = "s3cret";
/// Trailer names a capture keeps as they are (none is a secret header or field).
const TRAILER_NAMES: [&str; 4] = ["grpc-status", "grpc-message", "x-checksum", "x-row-count"];
const MAX_FRAME: usize = 20 * 1024;
const MAX_CAP: usize = 8 * 1024;

// ---------------------------------------------------------------------------------
// The scripted inner body.

/// The inner body's error, passed through to the reader as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Boom(u64);

/// A frame's data type. Frames are compared by their segments, so a tee that merged,
/// split or re-chunked a frame would show.
trait Chunk: Buf + std::fmt::Debug + Unpin + Sized + 'static {
    fn build(bytes: Bytes, split: usize) -> Self;
    fn segments(&self) -> Vec<Bytes>;
}

impl Chunk for Bytes {
    fn build(bytes: Bytes, _split: usize) -> Self {
        bytes
    }
    fn segments(&self) -> Vec<Bytes> {
        vec![self.clone()]
    }
}

/// Two segments, both shown by `chunks_vectored`: the tap sees every byte.
impl Chunk for Chain<Bytes, Bytes> {
    fn build(mut bytes: Bytes, split: usize) -> Self {
        let tail = bytes.split_off(split % (bytes.len() + 1));
        bytes.chain(tail)
    }
    fn segments(&self) -> Vec<Bytes> {
        vec![self.first_ref().clone(), self.last_ref().clone()]
    }
}

enum Step<D> {
    /// Not ready yet (the waker is woken at once).
    Pending,
    Frame(Frame<D>),
    Fail(Boom),
}

/// Plays its steps, one per poll, then ends (`None`). An `exact` body knows its size
/// and its end up front (`Full`-like); otherwise it is a stream that knows neither.
struct ScriptBody<D> {
    steps: VecDeque<Step<D>>,
    exact: bool,
}

impl<D: Chunk> Body for ScriptBody<D> {
    type Data = D;
    type Error = Boom;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<D>, Boom>>> {
        match self.steps.pop_front() {
            None => Poll::Ready(None),
            Some(Step::Pending) => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Some(Step::Frame(frame)) => Poll::Ready(Some(Ok(frame))),
            Some(Step::Fail(e)) => Poll::Ready(Some(Err(e))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.exact && self.steps.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        if !self.exact {
            return SizeHint::default();
        }
        let left: usize = self
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Frame(f) => f.data_ref().map(Buf::remaining),
                _ => None,
            })
            .sum();
        if self.steps.iter().any(|s| matches!(s, Step::Fail(_))) {
            let mut hint = SizeHint::new();
            hint.set_lower(left as u64);
            hint
        } else {
            SizeHint::with_exact(left as u64)
        }
    }
}

// ---------------------------------------------------------------------------------
// The generated cases.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Request,
    Response,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Alphabet {
    /// Any byte: the capture is mostly stored as base64.
    Binary,
    /// Printable ASCII: stored as text.
    Ascii,
    /// Multi-byte characters too: the cap (or a frame) may cut one.
    Utf8,
}

/// How the body goes, as generated (indices are reduced to the body's size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// Read to its end; `hyper_stop` stops polling as soon as `is_end_stream` says so.
    Clean { hyper_stop: bool },
    /// The inner body fails after this many data frames (no trailers).
    Fail(usize),
    /// Dropped by its reader after this many frames, before its end; for a request
    /// body, `client_gone` drops the whole request, else the handler answers anyway.
    Drop { after: usize, client_gone: bool },
}

/// How the body actually goes, once the generated indices are reduced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    Clean,
    Failed,
    Dropped,
}

#[derive(Clone, Debug)]
struct FrameSpec {
    len: usize,
    /// Where a segmented frame is split (reduced modulo its length + 1).
    split: usize,
    pending_before: bool,
}

#[derive(Clone, Debug)]
struct Case {
    side: Side,
    cap: usize,
    frames: Vec<FrameSpec>,
    alphabet: Alphabet,
    seed: u64,
    trailers: Option<Vec<(usize, String)>>,
    end: End,
    exact: bool,
    segmented: bool,
}

impl Case {
    /// The whole body, as the client sends it. No `"`, `{` or `[`: nothing in it is
    /// ever redacted, so the stored copy can be compared byte for byte.
    fn sent(&self) -> Vec<u8> {
        let total: usize = self.frames.iter().map(|f| f.len).sum();
        let mut state = self.seed;
        let mut next = move || {
            // splitmix64
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        // No JSON to parse, and no `key: value` / `key=value` pair (nor URL password) for
        // the text pass to redact: random letters once spelled `CvvH8:c`, a card code.
        let avoid = |b: u8| match b {
            b'"' | b'[' | b'{' | b':' | b'=' => b + 1,
            b => b,
        };
        let mut out = Vec::with_capacity(total);
        while out.len() < total {
            let r = next();
            match self.alphabet {
                Alphabet::Binary => {
                    let room = (total - out.len()).min(8);
                    out.extend(r.to_le_bytes()[..room].iter().map(|&b| avoid(b)));
                }
                Alphabet::Ascii => out.push(avoid(b' ' + (r % 95) as u8)),
                Alphabet::Utf8 => {
                    let c = ['é', '€', '𝄞', 'ж', 'a', ' ', '\n', 'Z'][(r % 8) as usize];
                    let mut buf = [0; 4];
                    let s = c.encode_utf8(&mut buf).as_bytes();
                    if out.len() + s.len() <= total {
                        out.extend_from_slice(s);
                    } else {
                        out.push(b'.');
                    }
                }
            }
        }
        out
    }

    fn trailer_map(&self) -> Option<HeaderMap> {
        let trailers = self.trailers.as_ref()?;
        let mut map = HeaderMap::new();
        for (name, value) in trailers {
            map.insert(TRAILER_NAMES[*name], value.parse().unwrap());
        }
        Some(map)
    }

    /// How the body goes, and after how many frames the reader drops it.
    fn ending(&self) -> (Ending, Option<usize>) {
        let frames = self.frames.len() + usize::from(self.trailers.is_some());
        match self.end {
            End::Drop { after, .. } if frames > 0 => (Ending::Dropped, Some(after % frames)),
            End::Fail(_) => (Ending::Failed, None),
            _ => (Ending::Clean, None),
        }
    }

    /// The inner body's script, frames cut out of `sent`.
    fn steps<D: Chunk>(&self, sent: &Bytes) -> VecDeque<Step<D>> {
        let data_frames = match self.end {
            End::Fail(at) => at % (self.frames.len() + 1),
            _ => self.frames.len(),
        };
        let mut steps = VecDeque::new();
        let mut at = 0;
        for f in &self.frames[..data_frames] {
            if f.pending_before {
                steps.push_back(Step::Pending);
            }
            let data = sent.slice(at..at + f.len);
            at += f.len;
            steps.push_back(Step::Frame(Frame::data(D::build(data, f.split))));
        }
        match self.end {
            End::Fail(_) => steps.push_back(Step::Fail(Boom(self.seed))),
            _ => {
                if let Some(map) = self.trailer_map() {
                    steps.push_back(Step::Frame(Frame::trailers(map)));
                }
            }
        }
        steps
    }

    fn client_gone(&self) -> bool {
        matches!(
            self.end,
            End::Drop {
                client_gone: true,
                ..
            }
        )
    }
}

/// A frame: empty, small, or up to `MAX_FRAME` bytes (unless `small`).
fn frame_spec(small: bool) -> impl Strategy<Value = FrameSpec> {
    let max = if small { 400 } else { MAX_FRAME };
    let len = prop_oneof![
        2 => Just(0usize),
        3 => 1..64usize,
        5 => 0..=max,
    ];
    (len, any::<usize>(), prop::bool::weighted(0.2)).prop_map(|(len, split, pending_before)| {
        FrameSpec {
            len,
            split,
            pending_before,
        }
    })
}

/// 0..40 frames, and a cap (at most `MAX_CAP`): tiny, anywhere, or right around the
/// body's size (where an off-by-one would be).
fn frames_and_cap() -> impl Strategy<Value = (Vec<FrameSpec>, usize)> {
    let frames = prop_oneof![
        prop::collection::vec(frame_spec(false), 0..40),
        prop::collection::vec(frame_spec(true), 0..40),
    ];
    frames.prop_flat_map(|frames| {
        let total: usize = frames.iter().map(|f| f.len).sum();
        let cap = prop_oneof![
            0..=16usize,
            0..=MAX_CAP,
            (total.saturating_sub(2)..=total + 2).prop_map(|c| c.min(MAX_CAP)),
        ];
        (Just(frames), cap)
    })
}

fn trailers() -> impl Strategy<Value = Option<Vec<(usize, String)>>> {
    let value = prop::collection::vec(0..36u32, 0..12).prop_map(|digits| {
        digits
            .into_iter()
            .map(|d| char::from_digit(d, 36).unwrap())
            .collect::<String>()
    });
    prop::option::of(
        prop::collection::btree_map(0..TRAILER_NAMES.len(), value, 1..=TRAILER_NAMES.len())
            .prop_map(|m| m.into_iter().collect()),
    )
}

fn clean() -> impl Strategy<Value = End> {
    any::<bool>().prop_map(|hyper_stop| End::Clean { hyper_stop })
}

fn failing() -> impl Strategy<Value = End> {
    any::<usize>().prop_map(End::Fail)
}

fn dropped() -> impl Strategy<Value = End> {
    (any::<usize>(), any::<bool>())
        .prop_map(|(after, client_gone)| End::Drop { after, client_gone })
}

fn any_end() -> impl Strategy<Value = End> {
    prop_oneof![2 => clean(), 1 => failing(), 1 => dropped()]
}

fn case(end: impl Strategy<Value = End>) -> impl Strategy<Value = Case> {
    let side = prop_oneof![Just(Side::Request), Just(Side::Response)];
    let alphabet = prop_oneof![
        Just(Alphabet::Binary),
        Just(Alphabet::Ascii),
        Just(Alphabet::Utf8)
    ];
    (
        (side, frames_and_cap()),
        (alphabet, any::<u64>(), trailers()),
        (end, any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |((side, (frames, cap)), (alphabet, seed, trailers), (end, exact, segmented))| Case {
                side,
                cap,
                frames,
                alphabet,
                seed,
                trailers,
                end,
                exact,
                segmented,
            },
        )
}

// ---------------------------------------------------------------------------------
// Driving the bodies.

/// One poll result, comparable.
#[derive(Debug, PartialEq)]
enum Seen {
    Pending,
    Data(Vec<Bytes>),
    Trailers(HeaderMap),
    Failed(Boom),
    End,
}

fn seen<D: Chunk>(poll: Poll<Option<Result<Frame<D>, Boom>>>) -> Seen {
    match poll {
        Poll::Pending => Seen::Pending,
        Poll::Ready(None) => Seen::End,
        Poll::Ready(Some(Err(e))) => Seen::Failed(e),
        Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
            Ok(data) => Seen::Data(data.segments()),
            Err(frame) => Seen::Trailers(frame.into_trailers().expect("data or trailers")),
        },
    }
}

/// What the reader of the wrapped body got.
struct Read {
    data: Vec<u8>,
    trailers: Option<HeaderMap>,
}

fn same_state<D: Chunk>(
    reference: &ScriptBody<D>,
    tee: &DiagBody<ScriptBody<D>>,
    polls: usize,
) -> Result<(), TestCaseError> {
    let (want, have) = (reference.size_hint(), tee.size_hint());
    prop_assert_eq!(
        (have.lower(), have.upper()),
        (want.lower(), want.upper()),
        "size_hint after {} polls",
        polls
    );
    prop_assert_eq!(
        tee.is_end_stream(),
        reference.is_end_stream(),
        "is_end_stream after {} polls",
        polls
    );
    Ok(())
}

/// A wrapped body, pinned.
type Tee<D> = Pin<Box<DiagBody<ScriptBody<D>>>>;

/// Polls the case's body through `DiagBody` (with `tap`) and, in lockstep, the same
/// body bare; every poll must give the same result. Returns what the reader got and
/// the wrapped body, not dropped yet (the caller checks what is stored before the drop).
fn lockstep<D: Chunk>(
    case: &Case,
    sent: &Bytes,
    tap: Option<diag_core::debug::BodyTap>,
) -> Result<(Read, Tee<D>), TestCaseError> {
    let mut reference = ScriptBody {
        steps: case.steps::<D>(sent),
        exact: case.exact,
    };
    let inner = ScriptBody {
        steps: case.steps::<D>(sent),
        exact: case.exact,
    };
    let mut tee = Box::pin(DiagBody::tapped(inner, tap));
    let mut cx = Context::from_waker(Waker::noop());
    let (ending, drop_after) = case.ending();
    let hyper_stop = matches!(case.end, End::Clean { hyper_stop: true });
    let mut read = Read {
        data: Vec::new(),
        trailers: None,
    };
    let (mut polls, mut frames) = (0, 0);
    same_state(&reference, &tee, polls)?;
    loop {
        if drop_after == Some(frames) || (hyper_stop && tee.is_end_stream()) {
            break;
        }
        let want = seen(Pin::new(&mut reference).poll_frame(&mut cx));
        let have = seen(tee.as_mut().poll_frame(&mut cx));
        polls += 1;
        prop_assert_eq!(&have, &want, "poll {}", polls);
        same_state(&reference, &tee, polls)?;
        match have {
            Seen::Pending => {}
            Seen::Data(segments) => {
                frames += 1;
                segments.iter().for_each(|s| read.data.extend_from_slice(s));
            }
            Seen::Trailers(map) => {
                frames += 1;
                read.trailers = Some(map);
            }
            Seen::Failed(e) => {
                prop_assert_eq!(ending, Ending::Failed);
                prop_assert_eq!(e, Boom(case.seed), "the inner error, unchanged");
                break;
            }
            Seen::End => break,
        }
    }
    // The reader got the bytes the client sent, in order, no more, no fewer.
    let sent_until_stop: usize = case.frames.iter().take(frames).map(|f| f.len).sum();
    prop_assert!(read.data[..] == sent[..sent_until_stop.min(sent.len())]);
    match ending {
        Ending::Clean => {
            prop_assert_eq!(read.data.len(), sent.len());
            prop_assert_eq!(&read.trailers, &case.trailer_map());
        }
        Ending::Failed | Ending::Dropped => prop_assert!(read.data.len() <= sent.len()),
    }
    Ok((read, tee))
}

// ---------------------------------------------------------------------------------
// The debug request around the body.

fn diag(cap: usize) -> Diag {
    Diag::builder()
        .token(TOKEN)
        .capture_body_limit(cap)
        .build()
        .unwrap()
}

fn begin(diag: &Diag, debug: bool) -> diag_core::request::RequestGuard {
    let headers = if debug {
        vec![("x-debug".to_owned(), TOKEN.to_owned())]
    } else {
        Vec::new()
    };
    diag.begin(&RequestView {
        method: "POST",
        route: Some("/echo"),
        uri: "/echo",
        headers: &headers,
        peer: &|| None,
    })
}

fn stored(diag: &Diag, id: u64) -> Option<std::sync::Arc<Capture>> {
    diag.debug_mode().recorder().get(id)
}

/// The stored body is the first `min(cap, total)` bytes the reader got, counted in
/// full, truncated iff more went by than the cap.
fn check_body(
    body: &CapturedBody,
    read: &[u8],
    cap: usize,
    ended: bool,
) -> Result<(), TestCaseError> {
    let kept = &read[..cap.min(read.len())];
    prop_assert_eq!(body.total_bytes, read.len() as u64, "total_bytes");
    prop_assert_eq!(body.captured_bytes, kept.len(), "captured_bytes");
    prop_assert_eq!(body.truncated, read.len() > cap, "truncated");
    prop_assert_eq!(body.ended, ended, "ended");
    match std::str::from_utf8(kept) {
        Ok(text) => {
            prop_assert_eq!(body.text.as_deref(), Some(text));
            prop_assert_eq!(&body.base64, &None);
        }
        // A character cut at the cap: the text is the whole characters before it.
        Err(e) if e.error_len().is_none() => {
            let text = std::str::from_utf8(&kept[..e.valid_up_to()]).unwrap();
            prop_assert_eq!(body.text.as_deref(), Some(text));
        }
        // Not text, with no content type to say it is binary: never base64 (which no
        // pass redacts). Text with stray bytes is shown with U+FFFD; bytes with NULs
        // (UTF-16, binary) are withheld.
        Err(_) if kept.contains(&0) => {
            prop_assert_eq!(&body.text, &None);
            prop_assert_eq!(&body.base64, &None);
            prop_assert!(body.withheld.is_some(), "withheld");
        }
        Err(_) => {
            prop_assert_eq!(body.text.as_deref(), Some(&*String::from_utf8_lossy(kept)));
            prop_assert_eq!(&body.base64, &None);
        }
    }
    Ok(())
}

/// One debug request whose `case.side` body is the case's body, the other one empty.
/// Checks the pass-through (property 1), then what is stored (2, 3) and that nothing is
/// left in flight.
fn debug_request<D: Chunk>(case: &Case) -> Result<(), TestCaseError> {
    let sent = Bytes::from(case.sent());
    let diag = diag(case.cap);
    let guard = begin(&diag, true);
    let id = guard.debug_id().expect("a debug request");
    let (ending, _) = case.ending();
    let read = match case.side {
        Side::Request => {
            let (read, tee) = lockstep::<D>(case, &sent, guard.request_tap())?;
            prop_assert!(
                stored(&diag, id).is_none(),
                "a request body alone does not store the capture"
            );
            drop(tee);
            if ending == Ending::Dropped && case.client_gone() {
                drop(guard);
            } else {
                let tap = guard.finish(200, &mut Vec::<(String, String)>::new());
                prop_assert!(tap.is_some());
                // An empty response body: over before it starts.
                drop(DiagBody::tapped(Empty::<Bytes>::new(), tap));
            }
            read
        }
        Side::Response => {
            drop(DiagBody::tapped(Empty::<Bytes>::new(), guard.request_tap()));
            let tap = guard.finish(200, &mut Vec::<(String, String)>::new());
            prop_assert!(tap.is_some());
            let (read, tee) = lockstep::<D>(case, &sent, tap)?;
            // Stored as soon as the end (or the failure) went by, while the body lives on
            // (hyper may never drop it soon, nor poll past `is_end_stream`).
            match ending {
                Ending::Clean => {
                    let capture = stored(&diag, id);
                    prop_assert!(capture.is_some(), "stored at the body's end");
                    prop_assert!(capture.unwrap().complete);
                }
                Ending::Failed => {
                    let capture = stored(&diag, id);
                    prop_assert!(capture.is_some(), "stored at the body's failure");
                    prop_assert!(!capture.unwrap().complete);
                }
                Ending::Dropped => {
                    prop_assert!(stored(&diag, id).is_none(), "not over yet");
                }
            }
            drop(tee);
            read
        }
    };
    prop_assert_eq!(diag.debug_mode().in_flight(), 0, "nothing left in flight");
    let capture = stored(&diag, id).expect("stored once everything is dropped");
    let body_ended = ending == Ending::Clean;
    match case.side {
        Side::Request => {
            let complete = !(ending == Ending::Dropped && case.client_gone());
            prop_assert_eq!(capture.complete, complete, "complete");
            check_body(&capture.request.body, &read.data, case.cap, body_ended)?;
            if complete {
                let response = capture.response.as_ref().expect("the handler answered");
                check_body(&response.body, &[], case.cap, true)?;
            } else {
                prop_assert!(capture.response.is_none(), "no answer was sent");
            }
        }
        Side::Response => {
            prop_assert_eq!(capture.complete, ending == Ending::Clean, "complete");
            check_body(&capture.request.body, &[], case.cap, true)?;
            let response = capture
                .response
                .as_ref()
                .expect("the response head was sent");
            check_body(&response.body, &read.data, case.cap, body_ended)?;
            let mut want: Vec<(String, String)> = read
                .trailers
                .iter()
                .flatten()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
                .collect();
            let mut have = response.trailers.clone();
            want.sort();
            have.sort();
            prop_assert_eq!(have, want, "trailers");
        }
    }
    prop_assert_eq!(
        diag.debug_mode().recorder().recent().len(),
        1,
        "stored once"
    );
    Ok(())
}

/// A normal request (no `X-Debug`): no tap, the body passes through as it is, and
/// nothing is recorded.
fn normal_request<D: Chunk>(case: &Case) -> Result<(), TestCaseError> {
    let sent = Bytes::from(case.sent());
    let diag = diag(case.cap);
    let guard = begin(&diag, false);
    prop_assert!(guard.debug_id().is_none());
    let request_tap = guard.request_tap();
    prop_assert!(request_tap.is_none());
    if case.side == Side::Request {
        lockstep::<D>(case, &sent, request_tap)?;
    }
    let response_tap = guard.finish(200, &mut Vec::<(String, String)>::new());
    prop_assert!(response_tap.is_none());
    if case.side == Side::Response {
        lockstep::<D>(case, &sent, response_tap)?;
    }
    prop_assert_eq!(diag.debug_mode().in_flight(), 0);
    prop_assert!(diag.debug_mode().recorder().recent().is_empty());
    Ok(())
}

/// A check of one case, for one frame data type.
type Run = fn(&Case) -> Result<(), TestCaseError>;

/// Runs the check for the case's frame data type.
fn with_data_type(case: &Case, run: (Run, Run)) -> Result<(), TestCaseError> {
    if case.segmented {
        run.1(case)
    } else {
        run.0(case)
    }
}

fn config() -> Config {
    Config {
        cases: 256,
        // Nothing written next to the tests (the regressions file): the seed of a
        // failing case is printed with it.
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Property 1: the wrapped body yields exactly the inner body's frames (segments,
    /// trailers, pendings, errors), one poll for one poll, with the same `size_hint`
    /// and `is_end_stream`, whatever the ending. Checked in every tapped case; this test
    /// draws every ending.
    #[test]
    fn frames_pass_through_unchanged(case in case(any_end())) {
        with_data_type(&case, (debug_request::<Bytes>, debug_request::<Chain<Bytes, Bytes>>))?;
    }

    /// Property 2: a body read to its end, or failing, is stored as its first
    /// min(cap, total) bytes, `truncated` iff total > cap, `total_bytes` == total.
    #[test]
    fn capture_is_the_capped_prefix(case in case(prop_oneof![3 => clean(), 1 => failing()])) {
        with_data_type(&case, (debug_request::<Bytes>, debug_request::<Chain<Bytes, Bytes>>))?;
    }

    /// Property 3: a body dropped before its end is stored incomplete (for a request
    /// body: not ended, and the capture incomplete when the client went away), with
    /// what was read, and nothing stays in flight.
    #[test]
    fn dropped_early_is_stored_incomplete(case in case(dropped())) {
        with_data_type(&case, (debug_request::<Bytes>, debug_request::<Chain<Bytes, Bytes>>))?;
    }

    /// Property 4: without a tap (a normal request) the body passes through the same.
    #[test]
    fn untapped_body_passes_through(case in case(any_end())) {
        with_data_type(&case, (normal_request::<Bytes>, normal_request::<Chain<Bytes, Bytes>>))?;
    }
}
