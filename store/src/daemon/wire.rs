//! The worker protocol's encoding, as CppNix's `serialise.hh` defines it:
//! every number is a little-endian u64 (booleans and enums too), a string is
//! its length and its bytes padded with zeros to a multiple of eight, a set
//! or list is a count and its elements, and large data travels "framed": a
//! series of (length, bytes) chunks without padding, ended by a zero length.

use std::io::{self, Read, Write};

/// Reading the daemon's side of the socket.
pub struct WireReader<R: Read> {
    inner: R,
}

impl<R: Read> WireReader<R> {
    pub fn new(inner: R) -> Self {
        WireReader { inner }
    }

    pub fn u64(&mut self) -> io::Result<u64> {
        let mut b = [0u8; 8];
        self.inner.read_exact(&mut b).map_err(eof_is_disconnect)?;
        Ok(u64::from_le_bytes(b))
    }

    pub fn bool(&mut self) -> io::Result<bool> {
        Ok(self.u64()? != 0)
    }

    pub fn bytes(&mut self) -> io::Result<Vec<u8>> {
        let len = self.u64()?;
        if len > 1 << 32 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the Nix daemon sent a string of {len} bytes"),
            ));
        }
        let len = len as usize;
        let mut buf = vec![0u8; len];
        self.inner.read_exact(&mut buf).map_err(eof_is_disconnect)?;
        let pad = (8 - len % 8) % 8;
        if pad > 0 {
            let mut p = [0u8; 8];
            self.inner
                .read_exact(&mut p[..pad])
                .map_err(eof_is_disconnect)?;
        }
        Ok(buf)
    }

    pub fn string(&mut self) -> io::Result<String> {
        let b = self.bytes()?;
        String::from_utf8(b).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Text that need not be UTF-8 (log lines, build output, messages):
    /// invalid bytes become U+FFFD rather than failing the operation.
    pub fn text(&mut self) -> io::Result<String> {
        let b = self.bytes()?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }

    pub fn strings(&mut self) -> io::Result<Vec<String>> {
        let n = self.u64()?;
        let mut out = Vec::with_capacity(n.min(1 << 16) as usize);
        for _ in 0..n {
            out.push(self.string()?);
        }
        Ok(out)
    }
}

fn eof_is_disconnect(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "Nix daemon disconnected unexpectedly (maybe it crashed?)",
        )
    } else {
        e
    }
}

/// Wire-encode a number into any writer.
pub fn put_u64<W: Write + ?Sized>(w: &mut W, n: u64) -> io::Result<()> {
    w.write_all(&n.to_le_bytes())
}

/// Wire-encode a string (length, bytes, zero padding) into any writer.
pub fn put_bytes<W: Write + ?Sized>(w: &mut W, b: &[u8]) -> io::Result<()> {
    put_u64(w, b.len() as u64)?;
    w.write_all(b)?;
    let pad = (8 - b.len() % 8) % 8;
    w.write_all(&[0u8; 8][..pad])
}

/// Wire-encode a list of strings into any writer.
pub fn put_strings<'a, W: Write + ?Sized>(
    w: &mut W,
    items: impl ExactSizeIterator<Item = &'a str>,
) -> io::Result<()> {
    put_u64(w, items.len() as u64)?;
    for s in items {
        put_bytes(w, s.as_bytes())?;
    }
    Ok(())
}

/// Writing our side; buffered, flushed when the daemon is to answer.
pub struct WireWriter<W: Write> {
    inner: io::BufWriter<W>,
}

impl<W: Write> WireWriter<W> {
    pub fn new(inner: W) -> Self {
        WireWriter {
            inner: io::BufWriter::with_capacity(64 * 1024, inner),
        }
    }

    pub fn u64(&mut self, n: u64) -> io::Result<&mut Self> {
        put_u64(&mut self.inner, n)?;
        Ok(self)
    }

    pub fn bool(&mut self, b: bool) -> io::Result<&mut Self> {
        self.u64(u64::from(b))
    }

    pub fn bytes(&mut self, b: &[u8]) -> io::Result<&mut Self> {
        put_bytes(&mut self.inner, b)?;
        Ok(self)
    }

    pub fn str(&mut self, s: &str) -> io::Result<&mut Self> {
        self.bytes(s.as_bytes())
    }

    pub fn strings<'a>(
        &mut self,
        items: impl ExactSizeIterator<Item = &'a str>,
    ) -> io::Result<&mut Self> {
        put_strings(&mut self.inner, items)?;
        Ok(self)
    }

    /// Bytes as they are (a NAR before protocol 1.23, which the daemon
    /// delimits by parsing it).
    pub fn raw(&mut self, data: &[u8]) -> io::Result<&mut Self> {
        self.inner.write_all(data)?;
        Ok(self)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    /// Data sent framed: chunks as they are written, then the zero frame
    /// (see [`Framed::finish`]).
    pub fn framed(&mut self) -> Framed<'_, W> {
        Framed {
            to: self,
            buf: Vec::with_capacity(FRAME),
        }
    }
}

/// The chunk size of framed data (CppNix's default buffer size).
const FRAME: usize = 32 * 1024;

/// A writer of framed data; [`Framed::finish`] must end it.
pub struct Framed<'a, W: Write> {
    to: &'a mut WireWriter<W>,
    buf: Vec<u8>,
}

impl<W: Write> Framed<'_, W> {
    fn send(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.to.u64(self.buf.len() as u64)?;
            self.to.inner.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<()> {
        self.send()?;
        self.to.u64(0)?;
        self.to.flush()
    }
}

impl<W: Write> Write for Framed<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= FRAME {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_padded_to_eight() {
        let mut w = WireWriter::new(Vec::new());
        w.str("abc").unwrap().u64(7).unwrap();
        w.flush().unwrap();
        let bytes = w.inner.into_inner().unwrap();
        assert_eq!(bytes.len(), 8 + 8 + 8);
        assert_eq!(&bytes[..8], &3u64.to_le_bytes());
        assert_eq!(&bytes[8..16], b"abc\0\0\0\0\0");
        let mut r = WireReader::new(&bytes[..]);
        assert_eq!(r.string().unwrap(), "abc");
        assert_eq!(r.u64().unwrap(), 7);
    }

    #[test]
    fn framed_data_ends_with_a_zero_frame() {
        let mut w = WireWriter::new(Vec::new());
        {
            let mut f = w.framed();
            f.write_all(b"hello").unwrap();
            f.finish().unwrap();
        }
        let bytes = w.inner.into_inner().unwrap();
        let mut want = 5u64.to_le_bytes().to_vec();
        want.extend_from_slice(b"hello");
        want.extend_from_slice(&0u64.to_le_bytes());
        assert_eq!(bytes, want);
    }

    #[test]
    fn a_closed_socket_is_a_disconnect() {
        let mut r = WireReader::new(&[1u8, 2][..]);
        let e = r.u64().unwrap_err();
        assert!(e.to_string().contains("disconnected unexpectedly"));
    }
}
