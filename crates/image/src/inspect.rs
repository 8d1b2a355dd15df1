//! Checking that uploaded bytes are what their `disk_format` says.
//!
//! A qcow2 may name a backing file or an external data file, which QEMU
//! would open on the host when it boots the image: a known way to read a
//! cloud's host files. Such images are refused, as is data that doesn't
//! match its declared format (garbage called qcow2, or a qcow2 called raw).

/// Bytes kept from the start of an upload for inspection (an ISO's
/// signature sits at 32 KiB).
pub const HEAD_LEN: usize = 36 * 1024;

pub const SUPPORTED: &[&str] = &["qcow2", "raw", "iso"];

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted; the virtual size the format declares (None: same as size).
    Ok {
        virtual_size: Option<u64>,
    },
    Refused(String),
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

fn be32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}

fn is_qcow2(head: &[u8]) -> bool {
    head.len() >= 4 && &head[..4] == b"QFI\xfb"
}

fn is_iso(head: &[u8]) -> bool {
    head.len() >= 32774 && &head[32769..32774] == b"CD001"
}

/// Inspects the first bytes of an upload (`head`, up to [`HEAD_LEN`]).
pub fn inspect(disk_format: &str, head: &[u8]) -> Verdict {
    match disk_format {
        "qcow2" => {
            if !is_qcow2(head) || head.len() < 72 {
                return Verdict::Refused(
                    "Image data is not in qcow2 format, as its disk_format says.".into(),
                );
            }
            let version = be32(head, 4);
            if version != 2 && version != 3 {
                return Verdict::Refused(format!("Unsupported qcow2 version {version}."));
            }
            if be64(head, 8) != 0 || be32(head, 16) != 0 {
                return Verdict::Refused(
                    "A qcow2 image with a backing file is not allowed.".into(),
                );
            }
            if version == 3 {
                if head.len() < 104 {
                    return Verdict::Refused("Truncated qcow2 header.".into());
                }
                // Incompatible feature bit 2: external data file.
                if be64(head, 72) & 0b100 != 0 {
                    return Verdict::Refused(
                        "A qcow2 image with an external data file is not allowed.".into(),
                    );
                }
            }
            Verdict::Ok {
                virtual_size: Some(be64(head, 24)),
            }
        }
        "iso" => {
            if is_iso(head) {
                Verdict::Ok { virtual_size: None }
            } else {
                Verdict::Refused(
                    "Image data is not an ISO 9660 image, as its disk_format says.".into(),
                )
            }
        }
        "raw" => {
            if is_qcow2(head) {
                Verdict::Refused("Image data is qcow2 but its disk_format says raw.".into())
            } else {
                Verdict::Ok { virtual_size: None }
            }
        }
        other => Verdict::Refused(format!("Unsupported disk_format {other:?}.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qcow2(version: u32, backing: u64, incompat: u64) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..4].copy_from_slice(b"QFI\xfb");
        h[4..8].copy_from_slice(&version.to_be_bytes());
        h[8..16].copy_from_slice(&backing.to_be_bytes());
        h[24..32].copy_from_slice(&(1u64 << 30).to_be_bytes());
        h[72..80].copy_from_slice(&incompat.to_be_bytes());
        h
    }

    #[test]
    fn table() {
        let mut iso = vec![0u8; HEAD_LEN];
        iso[32769..32774].copy_from_slice(b"CD001");
        let cases: Vec<(&str, Vec<u8>, bool)> = vec![
            ("qcow2", qcow2(3, 0, 0), true),
            ("qcow2", qcow2(2, 0, 0), true),
            ("qcow2", qcow2(3, 512, 0), false),
            ("qcow2", qcow2(3, 0, 4), false),
            ("qcow2", qcow2(7, 0, 0), false),
            ("qcow2", b"garbage garbage garbage".repeat(10), false),
            ("raw", qcow2(3, 0, 0), false),
            ("raw", b"anything".to_vec(), true),
            ("iso", iso.clone(), true),
            ("iso", vec![0u8; 100], false),
            ("vmdk", vec![0u8; 100], false),
        ];
        for (i, (fmt, data, ok)) in cases.into_iter().enumerate() {
            assert_eq!(
                matches!(inspect(fmt, &data), Verdict::Ok { .. }),
                ok,
                "case {i}: {fmt}"
            );
        }
        assert_eq!(
            inspect("qcow2", &qcow2(3, 0, 0)),
            Verdict::Ok {
                virtual_size: Some(1 << 30)
            }
        );
    }
}
