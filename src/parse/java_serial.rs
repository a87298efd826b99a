//! Java object serialization, read only far enough to find where one
//! serialized object ends: JCEKS stores a secret-key entry as a
//! serialized `SealedObject`, with no length in front of it, and the
//! entries after it can only be reached by walking past it.
//!
//! Nothing here builds objects or keeps their contents: the sealed bytes
//! are skipped, never copied. Every read is checked against the end of the
//! data, and nesting, handles and class hierarchies are capped, so a
//! hostile stream ends in an error, never a hang or a stack overflow.

/// Objects nested inside one another, at most.
const MAX_DEPTH: usize = 32;
/// Objects, classes and strings one stream may define.
const MAX_HANDLES: usize = 4_096;
/// Classes above one class, at most.
const MAX_SUPERCLASSES: usize = 64;

const STREAM_MAGIC: [u8; 2] = [0xac, 0xed];
const STREAM_VERSION: [u8; 2] = [0x00, 0x05];

const TC_NULL: u8 = 0x70;
const TC_REFERENCE: u8 = 0x71;
const TC_CLASSDESC: u8 = 0x72;
const TC_OBJECT: u8 = 0x73;
const TC_STRING: u8 = 0x74;
const TC_ARRAY: u8 = 0x75;
const TC_CLASS: u8 = 0x76;
const TC_BLOCKDATA: u8 = 0x77;
const TC_ENDBLOCKDATA: u8 = 0x78;
const TC_BLOCKDATALONG: u8 = 0x7a;
const TC_LONGSTRING: u8 = 0x7c;
const TC_PROXYCLASSDESC: u8 = 0x7d;
const TC_ENUM: u8 = 0x7e;

const BASE_HANDLE: u32 = 0x7e_0000;

const SC_WRITE_METHOD: u8 = 0x01;
const SC_SERIALIZABLE: u8 = 0x02;
const SC_EXTERNALIZABLE: u8 = 0x04;
const SC_BLOCK_DATA: u8 = 0x08;

/// Why a stream could not be walked. Never quotes the stream.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SerialError {
    Truncated,
    /// Something lapse does not walk, or a malformed stream.
    Unsupported(&'static str),
    /// One of this module's caps.
    Cap(&'static str),
}

impl std::fmt::Display for SerialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SerialError::Truncated => f.write_str("the serialized object is truncated"),
            SerialError::Unsupported(what) => write!(f, "the serialized object holds {what}"),
            SerialError::Cap(what) => write!(f, "the serialized object has {what}"),
        }
    }
}

type Result<T> = std::result::Result<T, SerialError>;

/// What a class descriptor says about its instances' data.
#[derive(Debug)]
struct ClassDesc {
    /// `[B`, `[Ljava.lang.String;`: arrays' element types.
    array_element: Option<u8>,
    flags: u8,
    /// Each field's type code (`B`, `I`, `L`, `[` …), in stream order.
    fields: Vec<u8>,
    /// Index into [`Walker::classes`].
    superclass: Option<usize>,
}

#[derive(Debug)]
enum Handle {
    Class(usize),
    Other,
}

struct Walker<'a> {
    data: &'a [u8],
    pos: usize,
    classes: Vec<ClassDesc>,
    handles: Vec<Handle>,
}

/// The length of the one serialized object (stream header included) at
/// the start of `data`.
pub(crate) fn object_len(data: &[u8]) -> Result<usize> {
    let mut w = Walker {
        data,
        pos: 0,
        classes: Vec::new(),
        handles: Vec::new(),
    };
    if w.take(2)? != STREAM_MAGIC || w.take(2)? != STREAM_VERSION {
        return Err(SerialError::Unsupported(
            "no Java serialization stream header",
        ));
    }
    w.content(0)?;
    Ok(w.pos)
}

impl<'a> Walker<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(SerialError::Truncated)?;
        let bytes = self.data.get(self.pos..end).ok_or(SerialError::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn peek(&self) -> Result<u8> {
        self.data
            .get(self.pos)
            .copied()
            .ok_or(SerialError::Truncated)
    }

    /// A modified-UTF-8 string with a 16-bit length.
    fn utf(&mut self) -> Result<&'a [u8]> {
        let n = self.u16()? as usize;
        self.take(n)
    }

    fn new_handle(&mut self, h: Handle) -> Result<()> {
        if self.handles.len() >= MAX_HANDLES {
            return Err(SerialError::Cap("more than 4096 objects"));
        }
        self.handles.push(h);
        Ok(())
    }

    fn reference(&mut self) -> Result<&Handle> {
        let handle = self.u32()?;
        handle
            .checked_sub(BASE_HANDLE)
            .and_then(|i| self.handles.get(i as usize))
            .ok_or(SerialError::Unsupported("a reference to nothing"))
    }

    /// One `content`: an object or a block of data.
    fn content(&mut self, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(SerialError::Cap("objects nested more than 32 deep"));
        }
        match self.u8()? {
            TC_NULL => Ok(()),
            TC_REFERENCE => self.reference().map(|_| ()),
            TC_BLOCKDATA => {
                let n = self.u8()? as usize;
                self.take(n).map(|_| ())
            }
            TC_BLOCKDATALONG => {
                let n = self.u32()? as usize;
                self.take(n).map(|_| ())
            }
            TC_STRING => {
                self.new_handle(Handle::Other)?;
                self.utf().map(|_| ())
            }
            TC_LONGSTRING => {
                self.new_handle(Handle::Other)?;
                let b = self.take(8)?;
                let n = u64::from_be_bytes(b.try_into().expect("8 bytes"));
                let n = usize::try_from(n).map_err(|_| SerialError::Truncated)?;
                self.take(n).map(|_| ())
            }
            TC_CLASSDESC => {
                self.pos -= 1;
                self.class_desc(depth).map(|_| ())
            }
            TC_PROXYCLASSDESC => Err(SerialError::Unsupported("a proxy class")),
            TC_CLASS => {
                self.class_desc(depth + 1)?;
                self.new_handle(Handle::Other)
            }
            TC_ENUM => {
                self.class_desc(depth + 1)?;
                self.new_handle(Handle::Other)?;
                self.content(depth + 1)
            }
            TC_ARRAY => self.array(depth),
            TC_OBJECT => self.object(depth),
            _ => Err(SerialError::Unsupported("an unknown type code")),
        }
    }

    /// A class descriptor, new or referenced; `None` for `TC_NULL`.
    fn class_desc(&mut self, depth: usize) -> Result<Option<usize>> {
        if depth > MAX_DEPTH {
            return Err(SerialError::Cap("objects nested more than 32 deep"));
        }
        match self.u8()? {
            TC_NULL => Ok(None),
            TC_REFERENCE => match self.reference()? {
                Handle::Class(i) => Ok(Some(*i)),
                Handle::Other => Err(SerialError::Unsupported(
                    "a reference to an object where a class belongs",
                )),
            },
            TC_CLASSDESC => {
                let name = self.utf()?;
                self.take(8)?; // serialVersionUID
                let index = self.classes.len();
                let array_element = (name.first() == Some(&b'[')).then(|| name.get(1).copied());
                self.classes.push(ClassDesc {
                    array_element: array_element.map(|e| e.unwrap_or(0)),
                    flags: 0,
                    fields: Vec::new(),
                    superclass: None,
                });
                // The handle comes before the rest: the class's own
                // fields may refer to it.
                self.new_handle(Handle::Class(index))?;
                let flags = self.u8()?;
                let count = self.u16()?;
                let mut fields = Vec::with_capacity(count.min(256) as usize);
                for _ in 0..count {
                    let code = self.u8()?;
                    self.utf()?; // the field's name
                    if matches!(code, b'L' | b'[') {
                        // The field's class name, as a string object.
                        self.content(depth + 1)?;
                    } else if !matches!(code, b'B' | b'C' | b'D' | b'F' | b'I' | b'J' | b'S' | b'Z')
                    {
                        return Err(SerialError::Unsupported("a field of unknown type"));
                    }
                    fields.push(code);
                }
                self.annotation(depth + 1)?;
                let superclass = self.class_desc(depth + 1)?;
                let class = &mut self.classes[index];
                class.flags = flags;
                class.fields = fields;
                class.superclass = superclass;
                Ok(Some(index))
            }
            TC_PROXYCLASSDESC => Err(SerialError::Unsupported("a proxy class")),
            _ => Err(SerialError::Unsupported(
                "something other than a class where a class belongs",
            )),
        }
    }

    /// Contents up to `TC_ENDBLOCKDATA`.
    fn annotation(&mut self, depth: usize) -> Result<()> {
        while self.peek()? != TC_ENDBLOCKDATA {
            self.content(depth)?;
        }
        self.pos += 1;
        Ok(())
    }

    fn array(&mut self, depth: usize) -> Result<()> {
        let class = self
            .class_desc(depth + 1)?
            .ok_or(SerialError::Unsupported("an array without a class"))?;
        self.new_handle(Handle::Other)?;
        let len = self.u32()? as usize;
        let element = self.classes[class]
            .array_element
            .ok_or(SerialError::Unsupported("an array whose class is no array"))?;
        match primitive_size(element) {
            Some(size) => {
                let n = len.checked_mul(size).ok_or(SerialError::Truncated)?;
                self.take(n).map(|_| ())
            }
            None if matches!(element, b'L' | b'[') => {
                // Each element takes at least one byte: the data bounds the loop.
                for _ in 0..len {
                    self.content(depth + 1)?;
                }
                Ok(())
            }
            None => Err(SerialError::Unsupported("an array of unknown type")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<()> {
        let class = self
            .class_desc(depth + 1)?
            .ok_or(SerialError::Unsupported("an object without a class"))?;
        self.new_handle(Handle::Other)?;
        // Class data is written from the topmost superclass down.
        let mut chain = vec![class];
        while let Some(up) = self.classes[*chain.last().expect("not empty")].superclass {
            if chain.len() > MAX_SUPERCLASSES || chain.contains(&up) {
                return Err(SerialError::Cap(
                    "a class hierarchy deeper than 64 or circular",
                ));
            }
            chain.push(up);
        }
        for &c in chain.iter().rev() {
            let flags = self.classes[c].flags;
            if flags & SC_EXTERNALIZABLE != 0 {
                if flags & SC_BLOCK_DATA == 0 {
                    return Err(SerialError::Unsupported(
                        "an externalizable object of the old format",
                    ));
                }
                self.annotation(depth + 1)?;
                continue;
            }
            if flags & SC_SERIALIZABLE == 0 {
                continue;
            }
            for i in 0..self.classes[c].fields.len() {
                let code = self.classes[c].fields[i];
                match primitive_size(code) {
                    Some(size) => self.take(size).map(|_| ())?,
                    None => self.content(depth + 1)?,
                }
            }
            if flags & SC_WRITE_METHOD != 0 {
                self.annotation(depth + 1)?;
            }
        }
        Ok(())
    }
}

fn primitive_size(code: u8) -> Option<usize> {
    match code {
        b'B' | b'Z' => Some(1),
        b'C' | b'S' => Some(2),
        b'F' | b'I' => Some(4),
        b'D' | b'J' => Some(8),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf(s: &str) -> Vec<u8> {
        let mut v = (s.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(s.as_bytes());
        v
    }

    /// `SealedObjectForKeyProtector` as the JDK's JceKeyStore writes it
    /// (the layout pyjks reads), followed by bytes that are not its own.
    fn sealed_object() -> Vec<u8> {
        let mut s = vec![0xac, 0xed, 0x00, 0x05, TC_OBJECT, TC_CLASSDESC];
        s.extend(utf("com.sun.crypto.provider.SealedObjectForKeyProtector"));
        s.extend([0; 8]);
        s.extend([SC_SERIALIZABLE, 0, 0, TC_ENDBLOCKDATA, TC_CLASSDESC]);
        s.extend(utf("javax.crypto.SealedObject"));
        s.extend([1; 8]);
        s.extend([SC_SERIALIZABLE, 0, 4]);
        s.push(b'[');
        s.extend(utf("encodedParams"));
        s.push(TC_STRING);
        s.extend(utf("[B"));
        s.push(b'[');
        s.extend(utf("encryptedContent"));
        s.extend([TC_REFERENCE, 0, 0x7e, 0, 2]);
        s.push(b'L');
        s.extend(utf("paramsAlg"));
        s.push(TC_STRING);
        s.extend(utf("Ljava/lang/String;"));
        s.push(b'L');
        s.extend(utf("sealAlg"));
        s.extend([TC_REFERENCE, 0, 0x7e, 0, 3]);
        s.extend([TC_ENDBLOCKDATA, TC_NULL]);
        // encodedParams: a new [B class, then the bytes.
        s.extend([TC_ARRAY, TC_CLASSDESC]);
        s.extend(utf("[B"));
        s.extend([2; 8]);
        s.extend([SC_SERIALIZABLE, 0, 0, TC_ENDBLOCKDATA, TC_NULL]);
        s.extend(3u32.to_be_bytes());
        s.extend([9, 9, 9]);
        // encryptedContent: the [B class by reference (handle 5).
        s.extend([TC_ARRAY, TC_REFERENCE, 0, 0x7e, 0, 5]);
        s.extend(5u32.to_be_bytes());
        s.extend([7; 5]);
        s.push(TC_STRING);
        s.extend(utf("PBEWithMD5AndTripleDES"));
        s.push(TC_STRING);
        s.extend(utf("PBEWithMD5AndTripleDES"));
        s
    }

    #[test]
    fn a_sealed_object_ends_where_its_last_field_ends() {
        let object = sealed_object();
        let mut data = object.clone();
        data.extend([0, 0, 0, 2, 0xff]);
        assert_eq!(object_len(&data), Ok(object.len()));
    }

    #[test]
    fn every_prefix_of_a_sealed_object_is_truncated() {
        let object = sealed_object();
        for end in 4..object.len() {
            assert_eq!(
                object_len(&object[..end]),
                Err(SerialError::Truncated),
                "{end}"
            );
        }
    }

    #[test]
    fn a_class_that_is_its_own_superclass_is_an_error() {
        let mut s = vec![0xac, 0xed, 0x00, 0x05, TC_OBJECT, TC_CLASSDESC];
        s.extend(utf("Loop"));
        s.extend([0; 8]);
        s.extend([SC_SERIALIZABLE, 0, 0, TC_ENDBLOCKDATA]);
        s.extend([TC_REFERENCE, 0, 0x7e, 0, 0]);
        assert!(matches!(object_len(&s), Err(SerialError::Cap(_))));
    }

    #[test]
    fn deep_nesting_is_capped_not_a_stack_overflow() {
        let mut s = vec![0xac, 0xed, 0x00, 0x05, TC_ARRAY, TC_CLASSDESC];
        s.extend(utf("[Ljava.lang.Object;"));
        s.extend([0; 8]);
        s.extend([SC_SERIALIZABLE, 0, 0, TC_ENDBLOCKDATA, TC_NULL, 0, 0, 0, 1]);
        for _ in 0..100_000 {
            s.extend([TC_ARRAY, TC_REFERENCE, 0, 0x7e, 0, 0, 0, 0, 0, 1]);
        }
        assert!(matches!(object_len(&s), Err(SerialError::Cap(_))));
    }
}
