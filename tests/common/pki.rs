//! Certificates made at test time (rcgen): a test CA and server certificates it signs, valid,
//! expired or for other names. Files are world-readable (test keys only) so a chronyd that
//! dropped to `nobody` can read them too.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, date_time_ymd};

pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pub pem: String,
}

/// A PEM certificate chain and key on disk.
pub struct ServerCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("CA certificate");
        Ca { pem: cert.pem(), issuer: Issuer::new(params, key) }
    }

    /// Writes the CA certificate to `dir/NAME.pem`.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(format!("{name}.pem"));
        write_readable(&path, &self.pem);
        path
    }

    /// A server certificate for `names` (DNS names or IP addresses); `expired` makes one that
    /// ended in 2020. Written as `dir/NAME.crt` (leaf then CA) and `dir/NAME.key`.
    pub fn server(&self, dir: &Path, name: &str, names: &[&str], expired: bool) -> ServerCert {
        let key = KeyPair::generate().expect("server key");
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("params");
        params.distinguished_name.push(DnType::CommonName, names[0]);
        if expired {
            params.not_before = date_time_ymd(2019, 1, 1);
            params.not_after = date_time_ymd(2020, 1, 1);
        } else {
            params.not_before = date_time_ymd(2024, 1, 1);
            params.not_after = date_time_ymd(2099, 1, 1);
        }
        let cert = params.signed_by(&key, &self.issuer).expect("server certificate");
        let paths =
            ServerCert { cert: dir.join(format!("{name}.crt")), key: dir.join(format!("{name}.key")) };
        write_readable(&paths.cert, &format!("{}{}", cert.pem(), self.pem));
        write_readable(&paths.key, &key.serialize_pem());
        paths
    }
}

fn write_readable(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write PEM");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
}

/// A temporary directory others (chronyd as `nobody`) may read and write.
pub fn open_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    dir
}
