//! On-disk framing of the embedded log: one CRC-protected frame per `append` call.
//! A frame is all-or-nothing, so a crash can only ever tear the last, never acknowledged, batch;
//! every decode path validates lengths before slicing, so corrupt bytes yield errors, not panics.
//!
//! ```text
//! file   := FILE_MAGIC frame*
//! frame  := FRAME_MAGIC body_len:u32le crc:u32le body      crc = crc32(body_len bytes ++ body)
//! body   := record+
//! record := rec_len:u32le key_len:u32le key eid_len:u32le event_id payload   (rec_len counts what follows it)
//! ```

use crate::Record;

/// Identifies the file format (and its version) so a foreign or future file is refused, not "repaired".
pub(crate) const FILE_MAGIC: &[u8; 8] = b"LDLOGv1\n";
/// Marks frame starts; lets recovery tell a torn tail from corruption followed by valid frames.
pub(crate) const FRAME_MAGIC: &[u8; 4] = b"LDFr";
pub(crate) const FRAME_HEADER_LEN: usize = 12;
/// Upper bound for one append; keeps a corrupt length field from triggering a huge allocation.
pub(crate) const MAX_BODY_LEN: usize = 256 * 1024 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FrameError {
    BadMagic,
    BadLength(u64),
    BadChecksum,
    Truncated,
    BadRecord(&'static str),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::BadMagic => f.write_str("bad frame magic"),
            FrameError::BadLength(n) => write!(f, "implausible frame length {n}"),
            FrameError::BadChecksum => f.write_str("checksum mismatch"),
            FrameError::Truncated => f.write_str("truncated frame"),
            FrameError::BadRecord(why) => write!(f, "malformed record: {why}"),
        }
    }
}

fn checksum(len_bytes: &[u8; 4], body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len_bytes);
    h.update(body);
    h.finalize()
}

fn record_len(r: &Record) -> usize {
    4 + 4 + r.key.len() + 4 + r.event_id.len() + r.payload.len()
}

/// Encodes `records` as one frame. Returns the frame bytes and, per record, its start relative to
/// the frame start (what the offset index stores once the frame position is known).
pub(crate) fn encode_frame(records: &[Record]) -> Result<(Vec<u8>, Vec<u64>), String> {
    let body_len: usize = records.iter().map(record_len).sum();
    if body_len > MAX_BODY_LEN {
        return Err(format!(
            "batch of {body_len} bytes exceeds the embedded log limit of {MAX_BODY_LEN} bytes"
        ));
    }
    let field = |n: usize| -> Result<[u8; 4], String> {
        u32::try_from(n)
            .map(u32::to_le_bytes)
            .map_err(|_| format!("field of {n} bytes is too large"))
    };
    let mut buf = Vec::with_capacity(FRAME_HEADER_LEN + body_len);
    buf.extend_from_slice(FRAME_MAGIC);
    let len_bytes = field(body_len)?;
    buf.extend_from_slice(&len_bytes);
    buf.extend_from_slice(&[0; 4]); // checksum, filled in below
    let mut starts = Vec::with_capacity(records.len());
    for r in records {
        starts.push(buf.len() as u64);
        buf.extend_from_slice(&field(record_len(r) - 4)?);
        buf.extend_from_slice(&field(r.key.len())?);
        buf.extend_from_slice(r.key.as_bytes());
        buf.extend_from_slice(&field(r.event_id.len())?);
        buf.extend_from_slice(r.event_id.as_bytes());
        buf.extend_from_slice(&r.payload);
    }
    let crc = checksum(&len_bytes, &buf[FRAME_HEADER_LEN..]);
    buf[8..12].copy_from_slice(&crc.to_le_bytes());
    Ok((buf, starts))
}

/// Parses a frame header; returns the body length. `available` is how many bytes the file holds
/// from the header start, so a length running past the end is reported as truncation.
pub(crate) fn parse_header(header: &[u8], available: u64) -> Result<(usize, u32), FrameError> {
    if header.len() < FRAME_HEADER_LEN || available < FRAME_HEADER_LEN as u64 {
        return Err(FrameError::Truncated);
    }
    if &header[0..4] != FRAME_MAGIC {
        return Err(FrameError::BadMagic);
    }
    let body_len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let crc = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    if body_len == 0 || body_len > MAX_BODY_LEN {
        return Err(FrameError::BadLength(body_len as u64));
    }
    if (FRAME_HEADER_LEN + body_len) as u64 > available {
        return Err(FrameError::Truncated);
    }
    Ok((body_len, crc))
}

/// Verifies a frame body and returns each record's start relative to the body start.
pub(crate) fn verify_body(body: &[u8], crc: u32) -> Result<Vec<u64>, FrameError> {
    let len_bytes = (body.len() as u32).to_le_bytes();
    if checksum(&len_bytes, body) != crc {
        return Err(FrameError::BadChecksum);
    }
    let mut starts = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let (_, used) = decode_record(&body[pos..])?;
        starts.push(pos as u64);
        pos += used;
    }
    Ok(starts)
}

/// A record as stored, borrowed from a read buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RawRecord<'a> {
    pub key: &'a [u8],
    pub event_id: &'a [u8],
    pub payload: &'a [u8],
}

fn take_u32(buf: &[u8], at: usize) -> Result<usize, FrameError> {
    buf.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or(FrameError::BadRecord("length field cut off"))
}

/// Decodes the record at the start of `buf`; returns it and the number of bytes it occupies.
pub(crate) fn decode_record(buf: &[u8]) -> Result<(RawRecord<'_>, usize), FrameError> {
    let rec_len = take_u32(buf, 0)?;
    let end = 4usize
        .checked_add(rec_len)
        .filter(|&e| e <= buf.len())
        .ok_or(FrameError::BadRecord("record runs past its frame"))?;
    let rec = &buf[4..end];
    let key_len = take_u32(rec, 0)?;
    let key = rec
        .get(4..4 + key_len)
        .ok_or(FrameError::BadRecord("key runs past its record"))?;
    let eid_at = 4 + key_len;
    let eid_len = take_u32(rec, eid_at)?;
    let event_id = rec
        .get(eid_at + 4..eid_at + 4 + eid_len)
        .ok_or(FrameError::BadRecord("event id runs past its record"))?;
    let payload = &rec[eid_at + 4 + eid_len..];
    Ok((
        RawRecord {
            key,
            event_id,
            payload,
        },
        end,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &str, eid: &str, payload: &[u8]) -> Record {
        Record {
            key: key.into(),
            event_id: eid.into(),
            payload: payload.to_vec(),
        }
    }

    fn roundtrip(frame: &[u8]) -> Result<Vec<u64>, FrameError> {
        let (body_len, crc) = parse_header(&frame[..FRAME_HEADER_LEN], frame.len() as u64)?;
        verify_body(&frame[FRAME_HEADER_LEN..FRAME_HEADER_LEN + body_len], crc)
    }

    #[test]
    fn encodes_and_decodes_records() {
        let records = vec![
            rec("k1", "e1", b"{\"a\":1}"),
            rec("", "", b""),
            rec("clé", "ид", &[0, 255, 1]),
        ];
        let (frame, starts) = encode_frame(&records).expect("encode");
        let body_starts = roundtrip(&frame).expect("valid frame");
        let shifted: Vec<u64> = body_starts
            .iter()
            .map(|s| s + FRAME_HEADER_LEN as u64)
            .collect();
        assert_eq!(shifted, starts);
        for (r, start) in records.iter().zip(&starts) {
            let (raw, _) = decode_record(&frame[*start as usize..]).expect("decode");
            assert_eq!(raw.key, r.key.as_bytes());
            assert_eq!(raw.event_id, r.event_id.as_bytes());
            assert_eq!(raw.payload, &r.payload[..]);
        }
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let (frame, _) = encode_frame(&[rec("key", "event", b"payload bytes")]).expect("encode");
        for byte in 0..frame.len() {
            for bit in 0..8 {
                let mut bad = frame.clone();
                bad[byte] ^= 1 << bit;
                assert!(
                    roundtrip(&bad).is_err(),
                    "flip of bit {bit} in byte {byte} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn truncation_is_detected_at_every_length() {
        let (frame, _) = encode_frame(&[rec("a", "b", b"c"), rec("d", "e", b"f")]).expect("encode");
        for cut in 0..frame.len() {
            let short = &frame[..cut];
            let header = &short[..cut.min(FRAME_HEADER_LEN)];
            assert!(parse_header(header, cut as u64).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn zero_filled_tail_is_not_a_frame() {
        let zeros = [0u8; 64];
        assert_eq!(
            parse_header(&zeros[..FRAME_HEADER_LEN], 64),
            Err(FrameError::BadMagic)
        );
    }

    #[test]
    fn implausible_length_is_rejected_without_allocating() {
        let mut header = FRAME_MAGIC.to_vec();
        header.extend_from_slice(&u32::MAX.to_le_bytes());
        header.extend_from_slice(&[0; 4]);
        assert!(matches!(
            parse_header(&header, u64::MAX),
            Err(FrameError::BadLength(_))
        ));
    }

    #[test]
    fn malformed_record_inside_valid_checksum_is_rejected() {
        // A frame whose checksum matches but whose record lengths lie (e.g. written by a buggy
        // version) must not be indexed.
        let body = {
            let mut b = Vec::new();
            b.extend_from_slice(&100u32.to_le_bytes()); // rec_len far beyond the body
            b.extend_from_slice(&[0u8; 8]);
            b
        };
        let crc = checksum(&(body.len() as u32).to_le_bytes(), &body);
        assert!(matches!(
            verify_body(&body, crc),
            Err(FrameError::BadRecord(_))
        ));
    }

    #[test]
    fn empty_batch_is_not_encodable_as_a_valid_frame() {
        // append() never writes empty batches; a zero-length body must not parse as valid, so a
        // zero-filled region never looks like data.
        let (frame, starts) = encode_frame(&[]).expect("encode");
        assert!(starts.is_empty());
        assert!(roundtrip(&frame).is_err());
    }
}
