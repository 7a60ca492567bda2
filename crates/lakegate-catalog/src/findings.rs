//! The errors a catalog load has found so far, each with its file and entry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::catalog::CatalogError;

/// The errors found so far while loading.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    pub(crate) errors: Vec<CatalogError>,
}

impl Findings {
    /// Records an error about `entry` of `file`.
    pub(crate) fn error(&mut self, file: &Path, entry: &str, message: impl Into<String>) {
        self.errors.push(CatalogError {
            file: file.to_path_buf(),
            entry: entry.to_string(),
            message: message.into(),
        });
    }

    /// Records `name` in `seen`, reporting a duplicate.
    pub(crate) fn unique(
        &mut self,
        seen: &mut BTreeMap<String, PathBuf>,
        kind: &str,
        name: &str,
        file: &Path,
    ) -> bool {
        if name.trim().is_empty() {
            self.error(file, &format!("{kind} ''"), "name must not be empty");
            return false;
        }
        if let Some(first) = seen.get(name) {
            let first = first.display().to_string();
            self.error(
                file,
                &format!("{kind} '{name}'"),
                format!("duplicate name (first declared in {first})"),
            );
            return false;
        }
        seen.insert(name.to_string(), file.to_path_buf());
        true
    }
}
