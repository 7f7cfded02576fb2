//! Python tools the tests run as real local peers (localstripe, moto), each installed on first
//! use into a venv of its own under the target directory.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

static INSTALL: Mutex<()> = Mutex::new(());

/// `program` from the venv `venv_name`, where `spec` (`package==version`) is installed on first
/// use. A lock file keeps concurrent test binaries from building the venv twice; the version
/// marker is written last, so a venv whose install was cut short is built again.
pub(crate) fn installed_program(venv_name: &str, spec: &str, program: &str) -> PathBuf {
    let _guard = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let venv = target.join(venv_name);
    let program = venv.join("bin").join(program);
    let marker = venv.join(format!("installed-{}", spec.replace(['[', ']', '='], "-")));
    let lock = venv.with_extension("lock");
    loop {
        if marker.exists() {
            return program;
        }
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&lock) {
            Ok(_) => break,
            Err(_) => {
                let stale = std::fs::metadata(&lock)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(600));
                if stale {
                    let _ = std::fs::remove_file(&lock);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    let installed = (|| {
        if marker.exists() {
            return true;
        }
        let _ = std::fs::remove_dir_all(&venv);
        let made = Command::new("python3").arg("-m").arg("venv").arg(&venv).status().is_ok_and(|s| s.success());
        made && Command::new(venv.join("bin/python"))
            .args(["-m", "pip", "install", "--quiet", spec])
            .status()
            .is_ok_and(|s| s.success())
            && std::fs::write(&marker, b"").is_ok()
    })();
    let _ = std::fs::remove_file(&lock);
    assert!(installed, "could not install {spec} into {}", venv.display());
    program
}
