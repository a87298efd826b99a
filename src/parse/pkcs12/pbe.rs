//! The password-based cryptography of PKCS#12 (RFC 7292, RFC 8018): the
//! PKCS#12 key derivation, the integrity MAC, and decryption of an
//! encrypted part under PBES1 (SHA-1 with 3DES or RC2) or PBES2 (PBKDF2
//! with HMAC-SHA-1/2 and AES or 3DES). Everything else is named, never
//! attempted, so the caller can say which algorithm it cannot run.
//!
//! Pure: bytes and a password in, bytes out. Never logs, never formats a
//! password or derived key into an error.

use super::oid;
use crate::parse::der::tlv;
use crate::parse::pkcs12_cost::MAX_ITERATIONS;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockCipherDecrypt, BlockModeDecrypt, KeyInit, KeyIvInit};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

/// A password as PKCS#12 distinguishes them: `PKCS12_create(NULL, …)`
/// writes stores keyed with no password bytes at all, while `""` is the
/// BMPString terminator alone (two zero bytes) to the PKCS#12 KDF. PBKDF2
/// sees both as empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Password<'a> {
    Null,
    Text(&'a str),
}

impl Password<'_> {
    /// The PKCS#12 KDF's input: UTF-16BE with a two-byte terminator.
    fn bmp(self) -> Vec<u8> {
        match self {
            Password::Null => Vec::new(),
            Password::Text(t) => t
                .encode_utf16()
                .chain(std::iter::once(0))
                .flat_map(u16::to_be_bytes)
                .collect(),
        }
    }

    /// PBKDF2's input: the UTF-8 bytes, as OpenSSL and the JDK pass them.
    fn bytes(&self) -> &[u8] {
        match self {
            Password::Null => &[],
            Password::Text(t) => t.as_bytes(),
        }
    }
}

/// Why a part could not be decrypted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PbeError {
    /// The padding or length did not check out: a wrong password.
    Decrypt,
    /// An algorithm lapse does not run, by name (or dotted OID).
    Unsupported(String),
    /// Parameters that do not parse, or a count past the cap.
    Invalid(&'static str),
    /// Deriving this key would pass what is left of the file's [`Budget`].
    OverBudget,
}

/// Key-derivation iterations a file has left, charged before each MAC check
/// and each part's decryption, in the unit of the cost walk (`parse::pkcs12_cost`): one
/// per iteration count, though PBES1 with 3DES derives three hash blocks per
/// iteration and PBES2 with AES-256 two, so the hashing behind the cap is
/// up to three times its figure. The cost walk refuses most stores before
/// any try; this is what holds when a store's outline reads differently to
/// the walk than to the reader (trailing bytes, more nodes than it visits).
#[derive(Debug)]
pub(crate) struct Budget {
    pub left: u64,
}

impl Budget {
    fn spend(&mut self, rounds: u64) -> Result<(), PbeError> {
        let rounds = rounds.max(1);
        if rounds > self.left {
            return Err(PbeError::OverBudget);
        }
        self.left -= rounds;
        Ok(())
    }
}

/// The digests PKCS#12 MACs and PBKDF2 PRFs use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    /// The hash of a MAC's DigestInfo algorithm OID.
    pub(crate) fn of_digest(alg: &[u8]) -> Option<Hash> {
        Some(match alg {
            oid::SHA1 => Hash::Sha1,
            oid::SHA224 => Hash::Sha224,
            oid::SHA256 => Hash::Sha256,
            oid::SHA384 => Hash::Sha384,
            oid::SHA512 => Hash::Sha512,
            _ => return None,
        })
    }

    fn of_hmac(alg: &[u8]) -> Option<Hash> {
        Some(match alg {
            oid::HMAC_SHA1 => Hash::Sha1,
            oid::HMAC_SHA224 => Hash::Sha224,
            oid::HMAC_SHA256 => Hash::Sha256,
            oid::HMAC_SHA384 => Hash::Sha384,
            oid::HMAC_SHA512 => Hash::Sha512,
            _ => return None,
        })
    }

    fn kdf(self, password: &[u8], salt: &[u8], id: u8, rounds: u64, len: usize) -> Vec<u8> {
        match self {
            Hash::Sha1 => pkcs12_kdf::<Sha1>(64, password, salt, id, rounds, len),
            Hash::Sha224 => pkcs12_kdf::<Sha224>(64, password, salt, id, rounds, len),
            Hash::Sha256 => pkcs12_kdf::<Sha256>(64, password, salt, id, rounds, len),
            Hash::Sha384 => pkcs12_kdf::<Sha384>(128, password, salt, id, rounds, len),
            Hash::Sha512 => pkcs12_kdf::<Sha512>(128, password, salt, id, rounds, len),
        }
    }

    pub(crate) fn output_len(self) -> usize {
        match self {
            Hash::Sha1 => 20,
            Hash::Sha224 => 28,
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }

    fn hmac_matches(self, key: &[u8], data: &[u8], tag: &[u8]) -> bool {
        fn check<M: Mac + KeyInit>(key: &[u8], data: &[u8], tag: &[u8]) -> bool {
            match <M as KeyInit>::new_from_slice(key) {
                Ok(mut mac) => {
                    mac.update(data);
                    mac.verify_slice(tag).is_ok()
                }
                Err(_) => false,
            }
        }
        match self {
            Hash::Sha1 => check::<Hmac<Sha1>>(key, data, tag),
            Hash::Sha224 => check::<Hmac<Sha224>>(key, data, tag),
            Hash::Sha256 => check::<Hmac<Sha256>>(key, data, tag),
            Hash::Sha384 => check::<Hmac<Sha384>>(key, data, tag),
            Hash::Sha512 => check::<Hmac<Sha512>>(key, data, tag),
        }
    }

    fn pbkdf2(self, password: &[u8], salt: &[u8], rounds: u32, out: &mut [u8]) {
        match self {
            Hash::Sha1 => pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, rounds, out),
            Hash::Sha224 => pbkdf2::pbkdf2_hmac::<Sha224>(password, salt, rounds, out),
            Hash::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, rounds, out),
            Hash::Sha384 => pbkdf2::pbkdf2_hmac::<Sha384>(password, salt, rounds, out),
            Hash::Sha512 => pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, rounds, out),
        }
    }
}

/// RFC 7292 appendix B.2: `id` 1 derives a key, 2 an IV, 3 a MAC key.
/// `v` is the digest's block size in bytes.
fn pkcs12_kdf<D: Digest>(
    v: usize,
    password: &[u8],
    salt: &[u8],
    id: u8,
    rounds: u64,
    len: usize,
) -> Vec<u8> {
    let fill = |src: &[u8]| -> Vec<u8> {
        let n = v * src.len().div_ceil(v);
        src.iter().cycle().take(n).copied().collect()
    };
    let mut i = fill(salt);
    i.extend(fill(password));
    let d = vec![id; v];
    let mut out = Vec::with_capacity(len);
    loop {
        let mut a = D::new().chain_update(&d).chain_update(&i).finalize();
        for _ in 1..rounds.max(1) {
            a = D::digest(&a);
        }
        let take = (len - out.len()).min(a.len());
        out.extend_from_slice(&a[..take]);
        if out.len() == len {
            return out;
        }
        let b: Vec<u8> = a.iter().cycle().take(v).copied().collect();
        for block in i.chunks_mut(v) {
            let mut carry = 1u16;
            for (x, y) in block.iter_mut().zip(&b).rev() {
                let sum = u16::from(*x) + u16::from(*y) + carry;
                *x = sum as u8;
                carry = sum >> 8;
            }
        }
    }
}

/// Whether `tag` is the MAC, under `hash` and the PKCS#12 KDF, of `data`.
pub(crate) fn mac_matches(
    hash: Hash,
    password: Password,
    salt: &[u8],
    rounds: u64,
    data: &[u8],
    tag: &[u8],
    budget: &mut Budget,
) -> Result<bool, PbeError> {
    budget.spend(rounds)?;
    let key = hash.kdf(&password.bmp(), salt, 3, rounds, hash.output_len());
    Ok(hash.hmac_matches(&key, data, tag))
}

/// Whether decrypting under `alg` (an AlgorithmIdentifier's content) uses
/// the PKCS#12 KDF, the one place a NULL password differs from `""`.
pub(crate) fn uses_pkcs12_kdf(alg: &[u8]) -> bool {
    matches!(tlv(alg), Some((0x06, o, _)) if o.starts_with(oid::PKCS12_PBE_PREFIX))
}

/// Decrypts `data` under `alg`, an AlgorithmIdentifier's content.
pub(crate) fn decrypt(
    alg: &[u8],
    password: Password,
    data: &[u8],
    budget: &mut Budget,
) -> Result<Vec<u8>, PbeError> {
    let (id, params) = split_alg(alg).ok_or(PbeError::Invalid("algorithm"))?;
    let params = split_seq(params).map_or(&[][..], |(content, _)| content);
    match id {
        oid::PBE_SHA1_3DES | oid::PBE_SHA1_2DES | oid::PBE_SHA1_RC2_128 | oid::PBE_SHA1_RC2_40 => {
            pbes1(id, params, password, data, budget)
        }
        oid::PBES2 => pbes2(params, password, data, budget),
        other => Err(PbeError::Unsupported(oid::name(other))),
    }
}

fn pbes1(
    id: &[u8],
    params: &[u8],
    password: Password,
    data: &[u8],
    budget: &mut Budget,
) -> Result<Vec<u8>, PbeError> {
    let (salt, rest) = match tlv(params) {
        Some((0x04, salt, rest)) => (salt, rest),
        _ => return Err(PbeError::Invalid("PBE parameters")),
    };
    let rounds = match tlv(rest) {
        Some((0x02, n, _)) => capped(integer(n))?,
        _ => return Err(PbeError::Invalid("PBE parameters")),
    };
    budget.spend(rounds)?;
    let bmp = password.bmp();
    let key_len = match id {
        oid::PBE_SHA1_3DES => 24,
        oid::PBE_SHA1_2DES | oid::PBE_SHA1_RC2_128 => 16,
        _ => 5,
    };
    let key = Hash::Sha1.kdf(&bmp, salt, 1, rounds, key_len);
    let iv = Hash::Sha1.kdf(&bmp, salt, 2, rounds, 8);
    match id {
        oid::PBE_SHA1_3DES => cbc_decrypt::<des::TdesEde3>(&key, &iv, data),
        oid::PBE_SHA1_2DES => cbc_decrypt::<des::TdesEde2>(&key, &iv, data),
        _ => cbc_decrypt::<rc2::Rc2>(&key, &iv, data),
    }
}

fn pbes2(
    params: &[u8],
    password: Password,
    data: &[u8],
    budget: &mut Budget,
) -> Result<Vec<u8>, PbeError> {
    let bad = PbeError::Invalid("PBES2 parameters");
    let (kdf, rest) = split_seq(params).ok_or(PbeError::Invalid("PBES2 parameters"))?;
    let (scheme, _) = split_seq(rest).ok_or(PbeError::Invalid("PBES2 parameters"))?;
    let (kdf_id, kdf_params) = split_alg(kdf).ok_or(PbeError::Invalid("PBES2 parameters"))?;
    let kdf_params = split_seq(kdf_params).map_or(&[][..], |(content, _)| content);
    let (enc_id, iv) = split_alg(scheme).ok_or(PbeError::Invalid("PBES2 parameters"))?;
    let key_len = match enc_id {
        oid::AES128_CBC => 16,
        oid::AES192_CBC | oid::DES_EDE3_CBC => 24,
        oid::AES256_CBC => 32,
        other => {
            return Err(PbeError::Unsupported(format!(
                "PBES2 with {}",
                oid::name(other)
            )));
        }
    };
    if kdf_id != oid::PBKDF2 {
        return Err(PbeError::Unsupported(format!(
            "PBES2 with {}",
            oid::name(kdf_id)
        )));
    }
    let iv = match tlv(iv) {
        Some((0x04, iv, _)) => iv,
        _ => return Err(bad),
    };
    // PBKDF2-params: salt, iterationCount, keyLength OPTIONAL,
    // prf DEFAULT hmacWithSHA1 (RFC 8018 A.2).
    let (salt, rest) = match tlv(kdf_params) {
        Some((0x04, salt, rest)) => (salt, rest),
        _ => return Err(bad),
    };
    let (rounds, mut rest) = match tlv(rest) {
        Some((0x02, n, rest)) => (capped(integer(n))?, rest),
        _ => return Err(bad),
    };
    if let Some((0x02, _, after)) = tlv(rest) {
        rest = after;
    }
    let prf = match split_seq(rest) {
        Some((prf, _)) => {
            let (prf_id, _) = split_alg(prf).ok_or(PbeError::Invalid("PBES2 parameters"))?;
            Hash::of_hmac(prf_id).ok_or_else(|| {
                PbeError::Unsupported(format!("PBKDF2 with {}", oid::name(prf_id)))
            })?
        }
        None => Hash::Sha1,
    };
    budget.spend(rounds)?;
    let mut key = vec![0u8; key_len];
    let rounds = u32::try_from(rounds).map_err(|_| PbeError::Invalid("iteration count"))?;
    prf.pbkdf2(password.bytes(), salt, rounds, &mut key);
    match enc_id {
        oid::AES128_CBC => cbc_decrypt::<aes::Aes128>(&key, iv, data),
        oid::AES192_CBC => cbc_decrypt::<aes::Aes192>(&key, iv, data),
        oid::AES256_CBC => cbc_decrypt::<aes::Aes256>(&key, iv, data),
        _ => cbc_decrypt::<des::TdesEde3>(&key, iv, data),
    }
}

fn cbc_decrypt<C>(key: &[u8], iv: &[u8], data: &[u8]) -> Result<Vec<u8>, PbeError>
where
    C: BlockCipherDecrypt + KeyInit,
{
    let mode = cbc::Decryptor::<C>::new_from_slices(key, iv)
        .map_err(|_| PbeError::Invalid("key or IV length"))?;
    mode.decrypt_padded_vec::<Pkcs7>(data)
        .map_err(|_| PbeError::Decrypt)
}

fn capped(rounds: u64) -> Result<u64, PbeError> {
    if rounds > MAX_ITERATIONS {
        return Err(PbeError::Invalid("iteration count past the cap"));
    }
    Ok(rounds)
}

/// An AlgorithmIdentifier's content: (OID, the parameters' TLV).
fn split_alg(alg: &[u8]) -> Option<(&[u8], &[u8])> {
    match tlv(alg)? {
        (0x06, id, params) => Some((id, params)),
        _ => None,
    }
}

/// A SEQUENCE TLV at the start of `b`: (its content, what follows).
fn split_seq(b: &[u8]) -> Option<(&[u8], &[u8])> {
    match tlv(b)? {
        (0x30, content, rest) => Some((content, rest)),
        _ => None,
    }
}

/// A non-negative INTEGER's value; past 64 bits (or negative), the
/// largest, which every cap refuses.
pub(crate) fn integer(content: &[u8]) -> u64 {
    let digits = &content[content.iter().take_while(|&&b| b == 0).count()..];
    if content.first().is_some_and(|b| b & 0x80 != 0) || digits.len() > 8 {
        return u64::MAX;
    }
    digits.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The PKCS#12 KDF against OpenSSL's, as `openssl kdf -keylen N
    /// -kdfopt digest:D -kdfopt hexpass:<BMP> -kdfopt
    /// hexsalt:0A58CF64530D823F -kdfopt id:I -kdfopt iter:R PKCS12KDF`
    /// prints it (the first two are also OpenSSL's own test vectors).
    #[test]
    fn kdf_matches_openssl() {
        let salt = [0x0a, 0x58, 0xcf, 0x64, 0x53, 0x0d, 0x82, 0x3f];
        let smeg = Password::Text("smeg").bmp();
        let cases = [
            (
                Hash::Sha1,
                &smeg,
                1,
                1,
                24,
                "8aaae6297b6cb04642ab5b077851284eb7128f1a2a7fbca3",
            ),
            (Hash::Sha1, &smeg, 2, 1, 8, "79993dfe048d3b76"),
            (
                Hash::Sha512,
                &smeg,
                3,
                1000,
                70,
                "03d741f5949e0f87720daa7f1e6c8e77deefae1c0e1c829300730195c2f2f3ca276408f5841e6c2529fbd0c8a2bdb325b39191d145db35f7d443d8f3c6d2e72386cc9d826474",
            ),
            (
                Hash::Sha256,
                &Password::Text("").bmp(),
                3,
                7,
                20,
                "3665e8286fe0dec7f4467043c046bae2519bcaef",
            ),
        ];
        for (hash, password, id, rounds, len, expected) in cases {
            let derived = hash.kdf(password, &salt, id, rounds, len);
            assert_eq!(hex::encode(derived), expected, "{hash:?} id {id}");
        }
    }

    #[test]
    fn null_and_empty_differ_only_to_the_pkcs12_kdf() {
        assert_eq!(Password::Null.bmp(), Vec::<u8>::new());
        assert_eq!(Password::Text("").bmp(), vec![0, 0]);
        assert_eq!(Password::Null.bytes(), Password::Text("").bytes());
        assert_eq!(Password::Text("é").bmp(), vec![0, 0xe9, 0, 0]);
    }

    #[test]
    fn unknown_algorithms_are_named() {
        // 1.2.840.113549.1.12.1.1, pbeWithSHAAnd128BitRC4, with no params.
        let alg = [
            0x06, 0x0a, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01, 0x01,
        ];
        assert_eq!(
            decrypt(&alg, Password::Null, &[], &mut Budget { left: 10 }),
            Err(PbeError::Unsupported("PBE-SHA1-RC4-128".into()))
        );
        assert_eq!(integer(&[0x00, 0x01, 0x86, 0xa0]), 100_000);
        assert_eq!(integer(&[0xff]), u64::MAX);
    }
}
