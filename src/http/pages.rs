//! The pages the server sends, rendered once per change of what they show
//! and shared by every client that asks meanwhile: a `/metrics` page is a
//! list of [`Bytes`] pieces (each credential family, the sources, lapse's
//! own metrics) that every response points into, so a thousand slow
//! clients hold one page, not a thousand.
//!
//! What each piece depends on decides how long it is kept: a family
//! without the clock lives as long as the snapshot, the two that read the
//! clock for one second, lapse's own metrics as long as no counter moves
//! (they are encoded for every scrape and the previous text kept when it
//! is the same). No piece is ever older than the snapshot and the second
//! it is served in.
//!
//! A gzip client gets the same pieces compressed ([`super::gzip`]): each
//! part is compressed once, the first time a gzip client asks for it, and
//! kept beside the text for as long as the text is, so no scrape
//! compresses more than what changed since the last.
//!
//! Rendering runs on a thread of its own, never on the blocking pool the
//! scans use, so no number of requests delays a scan; requests wait for
//! it in turn, and only the first of a second renders.

use super::gzip::{self, Coding, Deflated};
use crate::credential::{Thresholds, Timestamp};
use crate::inventory::Snapshot;
use crate::output::metrics::{self, LabelCache};
use crate::output::page::page_noting;
use crate::telemetry::SelfMetrics;
use hyper::body::Bytes;
use std::sync::{Arc, Weak};
use tokio::sync::Mutex;

/// Pieces are cut to this size, so a client's write takes one at a time.
const PIECE_BYTES: usize = 256 * 1024;

/// A page to send: its pieces in order, their length, and the coding
/// they are in.
pub struct Page {
    pub pieces: Vec<Bytes>,
    pub len: usize,
    pub coding: Coding,
}

/// One rendered part of a page, cut into pieces.
type Part = Arc<[Bytes]>;

#[derive(Default)]
struct Kept {
    /// The snapshot every part below was rendered from.
    snapshot: Weak<Snapshot>,
    /// The second the clock's families were rendered at.
    now: Timestamp,
    families: Vec<Option<Part>>,
    sources: Option<Part>,
    /// `families` and `sources` compressed, once a gzip client asked.
    families_gz: Vec<Option<Deflated>>,
    sources_gz: Option<Deflated>,
    /// Lapse's own metrics, classic text and OpenMetrics, and compressed.
    own: [Option<(Bytes, Option<Deflated>)>; 2],
    /// The HTML page, for `snapshot` at `html_now`, and compressed.
    html: Option<(Timestamp, usize, Bytes, Option<Bytes>)>,
}

impl Kept {
    /// Forgets what `snapshot` and `now` make stale.
    fn refresh(&mut self, snapshot: &Arc<Snapshot>, now: Timestamp) {
        if !Weak::ptr_eq(&self.snapshot, &Arc::downgrade(snapshot)) {
            self.snapshot = Arc::downgrade(snapshot);
            self.families = vec![None; metrics::FAMILIES];
            self.families_gz = vec![None; metrics::FAMILIES];
            self.sources = None;
            self.sources_gz = None;
            self.html = None;
        }
        if self.now != now {
            self.now = now;
            for (i, f) in self.families.iter_mut().enumerate() {
                if metrics::family_uses_now(i) {
                    *f = None;
                    self.families_gz[i] = None;
                }
            }
        }
    }
}

/// The server's pages, kept between requests.
#[derive(Default)]
pub struct Pages {
    kept: Mutex<Kept>,
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pages")
    }
}

fn cut(text: String) -> Part {
    cut_bytes(Bytes::from(text))
}

fn cut_bytes(bytes: Bytes) -> Part {
    (0..bytes.len())
        .step_by(PIECE_BYTES)
        .map(|at| bytes.slice(at..bytes.len().min(at + PIECE_BYTES)))
        .collect()
}

/// Runs `work` on a thread of its own and waits for it without blocking
/// the runtime; on the calling thread if no thread can be started.
async fn off_runtime<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let slot = Arc::new(std::sync::Mutex::new(Some(work)));
    let theirs = slot.clone();
    let spawned = std::thread::Builder::new()
        .name("lapse-render".into())
        .spawn(move || {
            let work = theirs.lock().ok().and_then(|mut w| w.take());
            if let Some(work) = work {
                let _ = tx.send(work());
            }
        });
    if spawned.is_ok()
        && let Ok(done) = rx.await
    {
        return done;
    }
    let work = slot.lock().ok().and_then(|mut w| w.take());
    match work {
        Some(work) => work(),
        // The thread took the work and panicked: nothing to retry with.
        None => panic!("rendering a page failed"),
    }
}

impl Pages {
    /// The `/metrics` page for `snapshot` at `now`.
    pub async fn metrics(
        &self,
        snapshot: &Arc<Snapshot>,
        labels: &Arc<LabelCache>,
        own: &SelfMetrics,
        now: Timestamp,
        openmetrics: bool,
        coding: Coding,
    ) -> Page {
        let mut kept = self.kept.lock().await;
        kept.refresh(snapshot, now);
        let missing: Vec<usize> = (0..metrics::FAMILIES)
            .filter(|i| kept.families[*i].is_none())
            .collect();
        if !missing.is_empty() || kept.sources.is_none() {
            let want_sources = kept.sources.is_none();
            let (snapshot, labels) = (snapshot.clone(), labels.clone());
            let (families, sources) = off_runtime(move || {
                let mut families = Vec::new();
                metrics::render_families(&snapshot, &labels, now, &missing, &mut |i, text| {
                    families.push((i, cut(text)))
                });
                let sources =
                    want_sources.then(|| cut(metrics::render_sources(&snapshot, &labels)));
                (families, sources)
            })
            .await;
            for (i, part) in families {
                kept.families[i] = Some(part);
            }
            if sources.is_some() {
                kept.sources = sources;
            }
        }
        let text = metrics::render_self(own, openmetrics, labels);
        let slot = &mut kept.own[usize::from(openmetrics)];
        if !matches!(slot, Some((b, _)) if b.as_ref() == text.as_bytes()) {
            *slot = None;
        }
        let (own, own_gz) = slot.get_or_insert_with(|| (Bytes::from(text), None));
        // Lapse's own metrics are a few kilobytes: compressed here.
        if coding == Coding::Gzip && own_gz.is_none() {
            *own_gz = gzip::deflate(std::slice::from_ref(own));
        }
        let (own, own_gz) = (own.clone(), own_gz.clone());
        if coding == Coding::Gzip
            && let Some(page) = gzipped(&mut kept, own_gz).await
        {
            return page;
        }
        let mut pieces: Vec<Bytes> = kept
            .families
            .iter()
            .chain(std::iter::once(&kept.sources))
            .flatten()
            .flat_map(|part| part.iter().cloned())
            .collect();
        pieces.push(own);
        let len = pieces.iter().map(Bytes::len).sum();
        Page {
            pieces,
            len,
            coding: Coding::Identity,
        }
    }

    /// The HTML page for `snapshot` at `now`.
    pub async fn html(
        &self,
        snapshot: &Arc<Snapshot>,
        thresholds: &Thresholds,
        now: Timestamp,
        owed: usize,
        coding: Coding,
    ) -> (Bytes, Coding) {
        let mut kept = self.kept.lock().await;
        kept.refresh(snapshot, now);
        let fresh =
            matches!(&kept.html, Some((at, was_owed, ..)) if (*at, *was_owed) == (now, owed));
        if !fresh {
            let (snapshot, thresholds) = (snapshot.clone(), *thresholds);
            let html = off_runtime(move || page_noting(&snapshot, &thresholds, now, owed)).await;
            kept.html = Some((now, owed, Bytes::from(html), None));
        }
        let Some((_, _, html, gz)) = kept.html.as_mut() else {
            return (Bytes::new(), Coding::Identity);
        };
        if coding == Coding::Gzip {
            if gz.is_none() {
                let text = html.clone();
                *gz = off_runtime(move || gzip::gzip_whole(&[text])).await;
            }
            if let Some(gz) = gz {
                return (gz.clone(), Coding::Gzip);
            }
        }
        (html.clone(), Coding::Identity)
    }
}

/// The `/metrics` page in gzip from `kept`'s parts, compressing those not
/// compressed yet (off the runtime); `None` if compressing failed.
async fn gzipped(kept: &mut Kept, own: Option<Deflated>) -> Option<Page> {
    let own = own?;
    let todo: Vec<(usize, Part)> = kept
        .families
        .iter()
        .chain(std::iter::once(&kept.sources))
        .enumerate()
        .filter(|(i, _)| match kept.families_gz.get(*i) {
            Some(gz) => gz.is_none(),
            None => kept.sources_gz.is_none(),
        })
        .filter_map(|(i, part)| Some((i, part.clone()?)))
        .collect();
    if !todo.is_empty() {
        let done = off_runtime(move || {
            todo.into_iter()
                .map(|(i, part)| (i, gzip::deflate(&part)))
                .collect::<Vec<_>>()
        })
        .await;
        for (i, gz) in done {
            match kept.families_gz.get_mut(i) {
                Some(slot) => *slot = Some(gz?),
                None => kept.sources_gz = Some(gz?),
            }
        }
    }
    let parts: Vec<&Deflated> = kept
        .families
        .iter()
        .zip(&kept.families_gz)
        .chain(std::iter::once((&kept.sources, &kept.sources_gz)))
        .filter(|(plain, _)| plain.is_some())
        .map(|(_, gz)| gz.as_ref())
        .chain(std::iter::once(Some(&own)))
        .collect::<Option<_>>()?;
    let mut pieces = vec![gzip::header()];
    pieces.extend(
        parts
            .iter()
            .flat_map(|p| cut_bytes(p.bytes.clone()).to_vec()),
    );
    pieces.push(gzip::trailer(parts.iter().copied()));
    let len = pieces.iter().map(Bytes::len).sum();
    Some(Page {
        pieces,
        len,
        coding: Coding::Gzip,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_is_cut_into_pieces_that_make_it_whole() {
        let text: String = (0..PIECE_BYTES * 2 + 10)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let part = cut(text.clone());
        assert_eq!(
            part.iter().map(Bytes::len).collect::<Vec<_>>(),
            [PIECE_BYTES, PIECE_BYTES, 10]
        );
        assert_eq!(part.concat(), text.as_bytes());
        assert!(cut(String::new()).is_empty());
    }
}
