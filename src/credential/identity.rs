//! Who a credential names, kept compact: one record is kept for every
//! credential found.

use std::fmt;
use std::sync::Arc;

/// Who a credential names: subject and issuer (distinguished names for
/// certificates, `sub`/`iss` claims for tokens).
///
/// One record is kept per credential, so its own text (subject, subject
/// CN, serial) is one allocation at its exact size, with the CN a slice of
/// the subject where it appears in it; the issuer's names are shared by
/// every credential it issued (see `parse::cert`).
#[derive(Clone)]
pub struct Identity {
    own: Box<str>,
    /// Lengths and offsets into `own`, [`ABSENT`] for a missing part:
    /// the subject's length (it starts at 0), the CN's start and length,
    /// and the serial's length (it ends `own`).
    spans: [u32; 4],
    issuer: Option<Arc<Names>>,
}

/// An issuer's distinguished name and common name.
#[derive(Debug, PartialEq, Eq, Default)]
pub struct Names {
    pub dn: Option<Box<str>>,
    pub cn: Option<Box<str>>,
}

const ABSENT: u32 = u32::MAX;

impl Identity {
    /// Each text is cut at 1 GiB, so that the offsets fit (inputs are
    /// capped far below that).
    pub fn new(
        subject: Option<&str>,
        subject_cn: Option<&str>,
        serial: Option<&str>,
        issuer: Option<Arc<Names>>,
    ) -> Identity {
        fn limit(t: &str) -> &str {
            let mut end = t.len().min(ABSENT as usize / 4);
            while !t.is_char_boundary(end) {
                end -= 1;
            }
            &t[..end]
        }
        let (subject, subject_cn, serial) =
            (subject.map(limit), subject_cn.map(limit), serial.map(limit));
        let len = |t: Option<&str>| t.map_or(ABSENT, |t| t.len() as u32);
        let in_subject = subject.zip(subject_cn).and_then(|(s, cn)| s.find(cn));
        let apart = subject_cn.filter(|_| in_subject.is_none());
        // At its exact size, so that the box takes it as it is.
        let mut own = String::with_capacity(
            [subject, apart, serial]
                .iter()
                .map(|t| t.map_or(0, str::len))
                .sum(),
        );
        own.push_str(subject.unwrap_or(""));
        let cn_start = match (subject_cn, in_subject) {
            (None, _) => ABSENT,
            (Some(_), Some(at)) => at as u32,
            (Some(cn), None) => {
                let start = own.len() as u32;
                own.push_str(cn);
                start
            }
        };
        own.push_str(serial.unwrap_or(""));
        Identity {
            own: own.into_boxed_str(),
            spans: [len(subject), cn_start, len(subject_cn), len(serial)],
            issuer,
        }
    }

    fn span(&self, start: u32, len: u32) -> Option<&str> {
        (len != ABSENT && start != ABSENT)
            .then(|| {
                self.own
                    .get(start as usize..(start as usize + len as usize))
            })
            .flatten()
    }

    pub fn subject(&self) -> Option<&str> {
        self.span(0, self.spans[0])
    }

    pub fn subject_cn(&self) -> Option<&str> {
        self.span(self.spans[1], self.spans[2])
    }

    /// Certificate serial number, lowercase hex.
    pub fn serial(&self) -> Option<&str> {
        let len = self.spans[3];
        let start = (len != ABSENT).then(|| self.own.len() as u32 - len)?;
        self.span(start, len)
    }

    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_ref()?.dn.as_deref()
    }

    pub fn issuer_cn(&self) -> Option<&str> {
        self.issuer.as_ref()?.cn.as_deref()
    }

    pub fn set_subject(&mut self, subject: Option<&str>) {
        *self = Identity::new(
            subject,
            self.subject_cn(),
            self.serial(),
            self.issuer.clone(),
        );
    }

    pub fn set_subject_cn(&mut self, cn: Option<&str>) {
        *self = Identity::new(self.subject(), cn, self.serial(), self.issuer.clone());
    }

    pub fn set_serial(&mut self, serial: Option<&str>) {
        *self = Identity::new(
            self.subject(),
            self.subject_cn(),
            serial,
            self.issuer.clone(),
        );
    }

    /// A token's `iss`: the names of an issuer with no CN are shared by
    /// the tokens of one thread that name it (one cluster's issuer signs
    /// all of its tokens).
    pub fn set_issuer(&mut self, dn: Option<&str>) {
        self.issuer = match (dn, self.issuer_cn().map(Box::from)) {
            (None, None) => None,
            (Some(dn), None) => Some(shared_issuer(dn)),
            (dn, cn) => Some(Arc::new(Names {
                dn: dn.map(Box::from),
                cn,
            })),
        };
    }

    pub fn set_issuer_cn(&mut self, cn: Option<&str>) {
        let dn = self.issuer().map(Box::from);
        self.issuer = Some(Arc::new(Names {
            dn,
            cn: cn.map(Box::from),
        }))
        .filter(|n| n.dn.is_some() || n.cn.is_some());
    }
}

/// Issuer names by a key (a certificate's issuer DER, a token's `iss`),
/// so that the credentials one issuer signed share one copy; at most 256
/// a table, emptied when full. Kept per thread: no lock on the parse path.
pub struct IssuerTable<K>(std::collections::HashMap<K, Option<Arc<Names>>>);

impl<K> Default for IssuerTable<K> {
    fn default() -> Self {
        IssuerTable(std::collections::HashMap::new())
    }
}

impl<K: std::hash::Hash + Eq> IssuerTable<K> {
    /// The names kept for `key`, or `make`'s, kept from now on.
    pub fn get_or<Q>(
        &mut self,
        key: &Q,
        make: impl FnOnce() -> Option<Arc<Names>>,
    ) -> Option<Arc<Names>>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(hit) = self.0.get(key) {
            return hit.clone();
        }
        let names = make();
        if self.0.len() >= 256 {
            self.0.clear();
        }
        self.0.insert(key.to_owned(), names.clone());
        names
    }
}

thread_local! {
    static TOKEN_ISSUERS: std::cell::RefCell<IssuerTable<String>> = std::cell::RefCell::default();
}

/// The shared names of an issuer known by its DN alone.
fn shared_issuer(dn: &str) -> Arc<Names> {
    let make = || {
        Some(Arc::new(Names {
            dn: Some(dn.into()),
            cn: None,
        }))
    };
    TOKEN_ISSUERS
        .with(|table| table.borrow_mut().get_or(dn, make))
        .unwrap_or_else(|| make().unwrap_or_default())
}

impl Default for Identity {
    fn default() -> Self {
        Identity::new(None, None, None, None)
    }
}

impl PartialEq for Identity {
    fn eq(&self, other: &Self) -> bool {
        self.subject() == other.subject()
            && self.subject_cn() == other.subject_cn()
            && self.serial() == other.serial()
            && self.issuer() == other.issuer()
            && self.issuer_cn() == other.issuer_cn()
    }
}

impl Eq for Identity {}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("subject", &self.subject())
            .field("issuer", &self.issuer())
            .field("subject_cn", &self.subject_cn())
            .field("issuer_cn", &self.issuer_cn())
            .field("serial", &self.serial())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_part_reads_back_as_given_and_a_cn_in_the_subject_is_not_stored_twice() {
        let ca = Arc::new(Names {
            dn: Some("CN=bench-ca, O=Example".into()),
            cn: Some("bench-ca".into()),
        });
        let id = Identity::new(
            Some("CN=host-7.example.com, O=Example"),
            Some("host-7.example.com"),
            Some("1f02"),
            Some(ca.clone()),
        );
        assert_eq!(id.subject(), Some("CN=host-7.example.com, O=Example"));
        assert_eq!(id.subject_cn(), Some("host-7.example.com"));
        assert_eq!(id.serial(), Some("1f02"));
        assert_eq!(id.issuer(), Some("CN=bench-ca, O=Example"));
        assert_eq!(id.issuer_cn(), Some("bench-ca"));
        // The subject and the serial, back to back; the CN is a slice.
        assert_eq!(&*id.own, "CN=host-7.example.com, O=Example1f02");
        assert_eq!(Arc::strong_count(&ca), 2);

        // A CN the subject does not spell (escaped there) is kept apart.
        let escaped = Identity::new(Some("CN=a\\,b"), Some("a,b"), None, None);
        assert_eq!(&*escaped.own, "CN=a\\,ba,b");
        assert_eq!(escaped.subject_cn(), Some("a,b"));
        assert_eq!(escaped.serial(), None);
        assert_eq!(escaped.issuer(), None);
    }

    #[test]
    fn absent_and_empty_parts_differ_and_setters_keep_the_rest() {
        let none = Identity::default();
        assert_eq!(
            (none.subject(), none.subject_cn(), none.serial()),
            (None, None, None)
        );
        let empty = Identity::new(Some(""), None, Some(""), None);
        assert_eq!(
            (empty.subject(), empty.subject_cn(), empty.serial()),
            (Some(""), None, Some(""))
        );
        assert_ne!(none, empty);

        let mut id = Identity::new(None, Some("etcd"), Some("0a"), None);
        id.set_subject(Some("CN=etcd"));
        id.set_issuer_cn(Some("etcd-ca"));
        assert_eq!(id.subject(), Some("CN=etcd"));
        assert_eq!(id.subject_cn(), Some("etcd"));
        assert_eq!(id.serial(), Some("0a"));
        assert_eq!((id.issuer(), id.issuer_cn()), (None, Some("etcd-ca")));
        id.set_issuer(Some("https://issuer"));
        assert_eq!(
            (id.issuer(), id.issuer_cn()),
            (Some("https://issuer"), Some("etcd-ca"))
        );
        id.set_serial(None);
        id.set_subject_cn(None);
        assert_eq!(
            (id.subject(), id.subject_cn(), id.serial()),
            (Some("CN=etcd"), None, None)
        );
        id.set_issuer(None);
        id.set_issuer_cn(None);
        assert!(id.issuer.is_none());

        // A subject set later takes the CN in: one copy, as if built so.
        let built = Identity::new(Some("CN=etcd"), Some("etcd"), None, None);
        let mut set = Identity::new(None, Some("etcd"), None, None);
        assert_eq!(&*set.own, "etcd");
        set.set_subject(Some("CN=etcd"));
        assert_eq!(&*set.own, "CN=etcd");
        assert_eq!(built, set);
        // Equal parts are equal identities, however they are stored.
        let apart = Identity {
            own: "CN=etcdetcd".into(),
            spans: [7, 7, 4, ABSENT],
            issuer: None,
        };
        assert_eq!(apart.subject_cn(), Some("etcd"));
        assert_eq!(built, apart);
    }

    #[test]
    fn tokens_naming_one_issuer_share_its_names() {
        let token = |iss: &str| {
            let mut id = Identity::default();
            id.set_issuer(Some(iss));
            id
        };
        let (a, b, c) = (
            token("https://kubernetes.default.svc"),
            token("https://kubernetes.default.svc"),
            token("https://other"),
        );
        assert!(Arc::ptr_eq(
            a.issuer.as_ref().unwrap(),
            b.issuer.as_ref().unwrap()
        ));
        assert!(!Arc::ptr_eq(
            a.issuer.as_ref().unwrap(),
            c.issuer.as_ref().unwrap()
        ));
        assert_eq!(
            (b.issuer(), b.issuer_cn()),
            (Some("https://kubernetes.default.svc"), None)
        );
        assert_eq!(c.issuer(), Some("https://other"));
    }

    #[test]
    fn an_issuer_table_keeps_one_copy_a_key_and_at_most_256_keys() {
        let names = |dn: &str| {
            Some(Arc::new(Names {
                dn: Some(dn.into()),
                cn: None,
            }))
        };
        let mut table = IssuerTable::<String>::default();
        let first = table.get_or("ca-0", || names("ca-0"));
        let again = table.get_or("ca-0", || panic!("made twice"));
        assert!(Arc::ptr_eq(
            first.as_ref().unwrap(),
            again.as_ref().unwrap()
        ));
        assert_eq!(table.get_or("none", || None), None);
        for i in 2..256 {
            table.get_or(&format!("ca-{i}"), || names("x"));
        }
        assert_eq!(table.0.len(), 256);
        // Full: the next new key empties the table first.
        table.get_or("ca-256", || names("ca-256"));
        assert_eq!(table.0.len(), 1);
        let remade = table.get_or("ca-0", || names("ca-0"));
        assert!(!Arc::ptr_eq(
            first.as_ref().unwrap(),
            remade.as_ref().unwrap()
        ));
        assert_eq!(remade.unwrap().dn.as_deref(), Some("ca-0"));
    }

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn an_identity_is_three_words_and_two_spans() {
        assert_eq!(std::mem::size_of::<Identity>(), 40);
    }
}
