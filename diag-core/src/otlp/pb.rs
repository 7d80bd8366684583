//! The protobuf wire format, as much of it as the OTLP messages need.

/// Just enough protobuf: the wire format of the OTLP messages.
#[derive(Default)]
pub(crate) struct Pb(pub(crate) Vec<u8>);

impl Pb {
    pub(crate) fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    pub(crate) fn tag(&mut self, field: u32, wire: u8) {
        self.varint(u64::from(field << 3 | u32::from(wire)));
    }

    pub(crate) fn bytes(&mut self, field: u32, b: &[u8]) {
        self.tag(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    pub(crate) fn string(&mut self, field: u32, s: &str) {
        self.bytes(field, s.as_bytes());
    }

    pub(crate) fn uint(&mut self, field: u32, v: u64) {
        self.tag(field, 0);
        self.varint(v);
    }

    pub(crate) fn fixed64(&mut self, field: u32, v: u64) {
        self.tag(field, 1);
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    /// A nested message, written in place: a one-byte length goes before it, and only
    /// a message of 128 bytes or more moves to make room for a longer one. No buffer
    /// per message.
    pub(crate) fn message(&mut self, field: u32, f: impl FnOnce(&mut Pb)) {
        self.tag(field, 2);
        let at = self.0.len();
        self.0.push(0);
        f(self);
        let mut len = (self.0.len() - at - 1) as u64;
        if len < 0x80 {
            self.0[at] = len as u8;
            return;
        }
        let mut varint = [0u8; 10];
        let mut n = 0;
        while len >= 0x80 {
            varint[n] = len as u8 | 0x80;
            len >>= 7;
            n += 1;
        }
        varint[n] = len as u8;
        let end = self.0.len();
        self.0.resize(end + n, 0);
        self.0.copy_within(at + 1..end, at + 1 + n);
        self.0[at..=at + n].copy_from_slice(&varint[..=n]);
    }

    /// A string field made of `parts`, without joining them first.
    pub(crate) fn string_of(&mut self, field: u32, parts: &[&str]) {
        self.tag(field, 2);
        self.varint(parts.iter().map(|p| p.len() as u64).sum());
        for p in parts {
            self.0.extend_from_slice(p.as_bytes());
        }
    }
}
