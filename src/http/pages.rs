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
//! A large page is not kept whole as text: a part that would take the
//! page's text past [`TEXT_KEPT_BYTES`] is compressed as it is rendered
//! and kept only compressed (at 100,000 credentials the text is 81 MiB,
//! its gzip 6.2 MB), and a client that does not take gzip gets it
//! inflated a piece at a time as it reads.
//!
//! Rendering runs on a thread of its own, never on the blocking pool the
//! scans use, so no number of requests delays a scan; requests wait for
//! it in turn, and only the first of a second renders.

use super::gzip::{self, Coding, Deflated, Deflater};
use crate::credential::{Thresholds, Timestamp};
use crate::inventory::Snapshot;
use crate::output::metrics::{self, FamilySink, LabelCache, PIECE_BYTES};
use crate::output::page::page_noting;
use crate::telemetry::SelfMetrics;
use hyper::body::Bytes;
use std::sync::{Arc, Weak};
use tokio::sync::Mutex;

/// How much of a `/metrics` page is kept as text; the parts past it are
/// kept compressed only. A page of 10,000 certificates (13.4 MB) is kept
/// whole, so a client that does not ask for gzip is sent it without any
/// work per scrape.
const TEXT_KEPT_BYTES: usize = 16 << 20;

/// A compressed part is sent inflated in pieces of this size: below what
/// the allocator gives pages of their own ([`crate::telemetry::tune_allocator`]),
/// so a piece reuses the heap rather than mapping fresh pages (at 100,000
/// credentials, 256 KiB pieces cost 230-440 ms of CPU per identity scrape,
/// these 100-170).
const INFLATED_PIECE_BYTES: usize = 32 * 1024;

/// A page to send: its pieces in order, the length of what they hold,
/// and the coding it is sent in.
pub struct Page {
    pieces: Vec<Piece>,
    pub len: usize,
    pub coding: Coding,
}

/// What a page's piece is: bytes to send, or a compressed part to send
/// inflated.
enum Piece {
    Bytes(Bytes),
    Inflated(Deflated),
}

impl Page {
    /// The bytes to send, in order; a compressed part is inflated a piece
    /// at a time, as the client takes them.
    pub fn into_frames(self) -> impl Iterator<Item = Bytes> + Send + Sync + 'static {
        self.pieces
            .into_iter()
            .flat_map(|p| -> Box<dyn Iterator<Item = Bytes> + Send + Sync> {
                match p {
                    Piece::Bytes(b) => Box::new(std::iter::once(b)),
                    Piece::Inflated(part) => Box::new(part.inflate(INFLATED_PIECE_BYTES)),
                }
            })
    }
}

/// One rendered part of a page, cut into pieces.
type Part = Arc<[Bytes]>;

/// A part of `/metrics` as kept: its text, unless the page's text was
/// too large to keep, and its gzip, once a gzip client asked or when the
/// text is not kept. One of the two is always there.
#[derive(Clone)]
struct Rendered {
    text: Option<Part>,
    gz: Option<Deflated>,
}

impl Rendered {
    fn text(text: Part) -> Self {
        Rendered {
            text: Some(text),
            gz: None,
        }
    }

    /// How much text is kept.
    fn text_kept(&self) -> usize {
        self.text
            .iter()
            .flat_map(|t| t.iter())
            .map(Bytes::len)
            .sum()
    }

    /// The part in pieces, as text.
    fn identity(&self, into: &mut Vec<Piece>) -> usize {
        match (&self.text, &self.gz) {
            (Some(text), _) => {
                into.extend(text.iter().cloned().map(Piece::Bytes));
                text.iter().map(Bytes::len).sum()
            }
            (None, Some(gz)) => {
                into.push(Piece::Inflated(gz.clone()));
                gz.text_len() as usize
            }
            (None, None) => 0,
        }
    }
}

/// Where the families a render makes go: a part's pieces are kept as text
/// while the page's text stays within `room`; a part that would pass it
/// is compressed as it comes, from the piece that would have.
struct Keeping {
    room: usize,
    text: Vec<Bytes>,
    len: usize,
    deflater: Option<Deflater>,
    failed: bool,
    done: Vec<(usize, Rendered)>,
}

impl Keeping {
    fn new(room: usize) -> Self {
        Keeping {
            room,
            text: Vec::new(),
            len: 0,
            deflater: None,
            failed: false,
            done: Vec::new(),
        }
    }
}

impl FamilySink for Keeping {
    fn piece(&mut self, _family: usize, text: String) {
        let text = Bytes::from(text);
        if self.deflater.is_none() && self.len + text.len() > self.room {
            let mut deflater = Deflater::new();
            for kept in self.text.drain(..) {
                self.failed |= deflater.write(&kept).is_none();
            }
            self.deflater = Some(deflater);
        }
        match &mut self.deflater {
            Some(deflater) => self.failed |= deflater.write(&text).is_none(),
            None => {
                self.len += text.len();
                self.text.push(text);
            }
        }
    }

    fn end(&mut self, family: usize) {
        let rendered = match self.deflater.take() {
            Some(deflater) => {
                let gz = deflater.finish();
                self.failed |= gz.is_none();
                Rendered { text: None, gz }
            }
            None => {
                self.room -= self.len;
                Rendered::text(std::mem::take(&mut self.text).into())
            }
        };
        self.len = 0;
        self.done.push((family, rendered));
    }
}

#[derive(Default)]
struct Kept {
    /// The snapshot every part below was rendered from.
    snapshot: Weak<Snapshot>,
    /// The second the clock's families were rendered at.
    now: Timestamp,
    families: Vec<Option<Rendered>>,
    sources: Option<Rendered>,
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
            self.sources = None;
            self.html = None;
        }
        if self.now != now {
            self.now = now;
            for (i, f) in self.families.iter_mut().enumerate() {
                if metrics::family_uses_now(i) {
                    *f = None;
                }
            }
        }
    }
}

/// The server's pages, kept between requests.
pub struct Pages {
    kept: Mutex<Kept>,
    /// How much of `/metrics` is kept as text ([`TEXT_KEPT_BYTES`]).
    text_kept: usize,
}

impl Default for Pages {
    fn default() -> Self {
        Pages {
            kept: Mutex::default(),
            text_kept: TEXT_KEPT_BYTES,
        }
    }
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pages")
    }
}

fn cut(bytes: Bytes) -> Part {
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
            // The text the parts not rendered now keep.
            let kept_text: usize = kept
                .families
                .iter()
                .chain(std::iter::once(&kept.sources))
                .flatten()
                .map(Rendered::text_kept)
                .sum();
            let room = self.text_kept.saturating_sub(kept_text);
            let (snapshot, labels) = (snapshot.clone(), labels.clone());
            let (families, sources) = off_runtime(move || {
                let mut keeping = Keeping::new(room);
                metrics::render_families(&snapshot, &labels, now, &missing, &mut keeping);
                if keeping.failed {
                    // Compressing cannot fail on memory it was given; if
                    // it did, the page is still whole, as text.
                    keeping = Keeping::new(usize::MAX);
                    metrics::render_families(&snapshot, &labels, now, &missing, &mut keeping);
                }
                let sources = want_sources.then(|| {
                    Rendered::text(cut(Bytes::from(metrics::render_sources(
                        &snapshot, &labels,
                    ))))
                });
                // A render's temporaries are freed by now; their pages go
                // back (100,000 files: 2-3 MiB less resident after 14
                // scrapes, no CPU time seen in the scrape).
                crate::telemetry::release_free_memory();
                (keeping.done, sources)
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
        let mut pieces = Vec::new();
        let mut len = 0;
        for part in kept
            .families
            .iter()
            .chain(std::iter::once(&kept.sources))
            .flatten()
        {
            len += part.identity(&mut pieces);
        }
        len += own.len();
        pieces.push(Piece::Bytes(own));
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
        .filter_map(|(i, part)| match part {
            Some(Rendered {
                text: Some(text),
                gz: None,
            }) => Some((i, text.clone())),
            _ => None,
        })
        .collect();
    if !todo.is_empty() {
        let done = off_runtime(move || {
            todo.into_iter()
                .map(|(i, part)| (i, gzip::deflate(&part)))
                .collect::<Vec<_>>()
        })
        .await;
        for (i, gz) in done {
            let slot = match kept.families.get_mut(i) {
                Some(slot) => slot,
                None => &mut kept.sources,
            };
            if let Some(part) = slot {
                part.gz = Some(gz?);
            }
        }
    }
    let parts: Vec<&Deflated> = kept
        .families
        .iter()
        .chain(std::iter::once(&kept.sources))
        .flatten()
        .map(|part| part.gz.as_ref())
        .chain(std::iter::once(Some(&own)))
        .collect::<Option<_>>()?;
    let mut pieces = vec![Piece::Bytes(gzip::header())];
    pieces.extend(
        parts
            .iter()
            .flat_map(|p| cut(p.bytes.clone()).to_vec())
            .map(Piece::Bytes),
    );
    pieces.push(Piece::Bytes(gzip::trailer(parts.iter().copied())));
    let len = pieces
        .iter()
        .map(|p| match p {
            Piece::Bytes(b) => b.len(),
            Piece::Inflated(part) => part.text_len() as usize,
        })
        .sum();
    Some(Page {
        pieces,
        len,
        coding: Coding::Gzip,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::{Credential, Fingerprint, Kind};
    use crate::inventory::files_snapshot;
    use std::io::Read;

    const NOW: Timestamp = 1_800_000_000;

    fn snapshot(n: usize) -> Arc<Snapshot> {
        let credentials: Vec<Credential> = (0..n)
            .map(|i| {
                let mut c = Credential::new(Kind::X509, Fingerprint::of(&i.to_le_bytes()))
                    .expiring(Some(NOW + 86_400 + i as i64));
                c.not_before = Some(NOW - 86_400);
                c.path = format!("/etc/pki/tls/{i:06}.pem").into();
                c
            })
            .collect();
        files_snapshot(credentials, Vec::new(), Some(NOW))
    }

    /// The page sent for `coding`: its bytes (checked against its
    /// length) and the coding it was sent in.
    async fn body(pages: &Pages, snapshot: &Arc<Snapshot>, coding: Coding) -> (Vec<u8>, Coding) {
        let labels = Arc::new(LabelCache::default());
        let own = SelfMetrics::new(&[("files", &[])], &[]);
        let page = pages
            .metrics(snapshot, &labels, &own, NOW, false, coding)
            .await;
        let len = page.len;
        let coding = page.coding;
        let pieces: Vec<Bytes> = page.into_frames().collect();
        let bytes = pieces.concat();
        assert_eq!(bytes.len(), len);
        (bytes, coding)
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .expect("valid gzip");
        out
    }

    /// The length of family `name`'s text in `page`.
    fn family_len(page: &str, name: &str) -> usize {
        let at = page.find(&format!("# HELP {name} ")).expect(name);
        let next = page[at + 1..]
            .find("# HELP ")
            .map_or(page.len(), |n| at + 1 + n);
        next - at
    }

    #[tokio::test]
    async fn a_page_past_the_text_kept_is_kept_compressed_and_sent_the_same() {
        let snapshot = snapshot(10_000);
        let (text, _) = body(&Pages::default(), &snapshot, Coding::Identity).await;
        let page = String::from_utf8(text.clone()).unwrap();
        let expires = family_len(&page, "lapse_credential_expires_in_seconds");
        let no_expiry = family_len(&page, "lapse_credential_no_expiry");
        let warn_after = family_len(&page, "lapse_credential_warn_after_timestamp_seconds");
        // Room for the first family and the headers of the two with no
        // series, not for validity_seconds or info.
        assert_eq!(expires, 1_000_177);
        let tight = Pages {
            text_kept: 1 << 20,
            ..Pages::default()
        };
        let (again, sent) = body(&tight, &snapshot, Coding::Identity).await;
        assert_eq!(sent, Coding::Identity);
        assert!(
            again == text,
            "the same page from the parts kept compressed"
        );
        let state = |kept: &Kept| -> Vec<(usize, bool)> {
            kept.families
                .iter()
                .flatten()
                .map(|p| (p.text_kept(), p.gz.is_some()))
                .collect()
        };
        assert_eq!(
            state(&*tight.kept.lock().await),
            [
                // Rendered first, and kept as text.
                (expires, false),
                // Left out by the default configuration.
                (0, false),
                (0, false),
                // Past the room: compressed as rendered, no text kept.
                (0, true),
                (0, false),
                // Headers only, within the room.
                (no_expiry, false),
                (warn_after, false),
                (0, true),
            ]
        );
        let (gz, sent) = body(&tight, &snapshot, Coding::Gzip).await;
        assert_eq!(sent, Coding::Gzip);
        assert!(gunzip(&gz) == text, "the same page in gzip");
        // The text kept is compressed once a gzip client asks, and kept.
        assert_eq!(
            state(&*tight.kept.lock().await),
            [
                (expires, true),
                (0, true),
                (0, true),
                (0, true),
                (0, true),
                (no_expiry, true),
                (warn_after, true),
                (0, true),
            ]
        );
    }

    #[test]
    fn a_part_is_cut_into_pieces_that_make_it_whole() {
        let text: String = (0..PIECE_BYTES * 2 + 10)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let part = cut(Bytes::from(text.clone()));
        assert_eq!(
            part.iter().map(Bytes::len).collect::<Vec<_>>(),
            [PIECE_BYTES, PIECE_BYTES, 10]
        );
        assert_eq!(part.concat(), text.as_bytes());
        assert!(cut(Bytes::new()).is_empty());
    }
}
