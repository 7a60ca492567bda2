//! Where a server's catalog comes from: a catalog directory (declarative,
//! read-only), or a policy store (`--store`), to which a catalog directory
//! given beside it is applied at every start (policy as code).

use std::path::{Path, PathBuf};

use lakegate_catalog::{Catalog, CatalogFile, LoadOptions, hash_password};
use lakegate_engine::{Engine, EngineOptions};
use lakegate_store::{ADMIN_ROLE, PolicyStore};

/// The environment variable that creates the first administrator of an
/// empty store: `name:password`. Never a flag: command lines are visible to
/// every user of the machine.
pub const BOOTSTRAP_ADMIN_VARIABLE: &str = "LAKEGATE_BOOTSTRAP_ADMIN";

/// The catalog directory served when neither `--catalog` nor `--store` is
/// given.
pub const DEFAULT_CATALOG: &str = "catalog/demo";

/// What a server serves: a catalog, and the policy store it comes from
/// with its version, when it has one.
pub struct PolicySource {
    /// The catalog.
    pub catalog: Catalog,
    /// The store and the policy version `catalog` is.
    pub store: Option<(PolicyStore, i64)>,
}

/// Loads the catalog a server serves: the directory `catalog` (default
/// [`DEFAULT_CATALOG`]) without `store`; with `store`, the store, after
/// applying `catalog` to it if given and bootstrapping an empty store.
pub async fn load_catalog(
    catalog: Option<&Path>,
    store: Option<&str>,
    options: &LoadOptions,
) -> Result<PolicySource, String> {
    let Some(url) = store else {
        let dir = catalog.unwrap_or(Path::new(DEFAULT_CATALOG));
        let catalog = Catalog::load(dir, options)
            .await
            .map_err(|e| e.to_string())?;
        return Ok(PolicySource {
            catalog,
            store: None,
        });
    };
    let store = PolicyStore::open(url).await.map_err(|e| e.to_string())?;
    if let Some(dir) = catalog {
        apply_directory(&store, dir, options).await?;
    }
    if !store.has_users().await.map_err(|e| e.to_string())? {
        bootstrap(&store).await?;
    }
    let (catalog, version) = load_store(&store, options).await?;
    Ok(PolicySource {
        catalog,
        store: Some((store, version)),
    })
}

/// The catalog a store holds, validated as a catalog directory is, and its
/// policy version.
pub async fn load_store(
    store: &PolicyStore,
    options: &LoadOptions,
) -> Result<(Catalog, i64), String> {
    let stored = store.load().await.map_err(|e| e.to_string())?;
    // Relative storage paths were made absolute when applied.
    let base = std::env::current_dir().map_err(|e| e.to_string())?;
    let label = PathBuf::from(store.url());
    let catalog = Catalog::from_shared_files(vec![(label, stored.content)], &base, options)
        .await
        .map_err(|e| e.to_string())?;
    Ok((catalog, stored.version))
}

/// Applies the catalog directory `dir` to `store`, once it passes the same
/// checks as `lakegate catalog check` (row filters and masks planned
/// included): its entries replace the store's entries of the same names, the
/// store's other entries stay.
async fn apply_directory(
    store: &PolicyStore,
    dir: &Path,
    options: &LoadOptions,
) -> Result<(), String> {
    Engine::check_catalog(dir, options, EngineOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let files = Catalog::parse(dir).map_err(|e| e.to_string())?;
    let content = merged(files, dir)?;
    let applied = store.apply(&content).await.map_err(|e| e.to_string())?;
    println!(
        "applied {} to {}: {} entries new or changed, policy version {}",
        dir.display(),
        store.url(),
        applied.changed,
        applied.version
    );
    Ok(())
}

/// The files of a catalog directory as one set of sections, with relative
/// storage paths made absolute against `dir` (a store has no directory to
/// resolve them against).
fn merged(files: Vec<(PathBuf, CatalogFile)>, dir: &Path) -> Result<CatalogFile, String> {
    let mut all = CatalogFile::merged(files.into_iter().map(|(_, file)| file));
    for location in &mut all.storage {
        if !location.url.contains("://") && !location.url.starts_with("${data_dir}") {
            let path = std::path::absolute(dir.join(&location.url)).map_err(|e| e.to_string())?;
            location.url = path.display().to_string();
        }
    }
    Ok(all)
}

/// Creates the first administrator of an empty store from
/// [`BOOTSTRAP_ADMIN_VARIABLE`], or says how to.
async fn bootstrap(store: &PolicyStore) -> Result<(), String> {
    let how = format!(
        "the policy store {} has no users: set {BOOTSTRAP_ADMIN_VARIABLE}=name:password \
         to create the first administrator (role '{ADMIN_ROLE}')",
        store.url()
    );
    let Ok(value) = std::env::var(BOOTSTRAP_ADMIN_VARIABLE) else {
        return Err(how);
    };
    let Some((name, password)) = value.split_once(':') else {
        return Err(format!(
            "{BOOTSTRAP_ADMIN_VARIABLE} is not name:password; {how}"
        ));
    };
    if name.trim().is_empty() || password.is_empty() {
        return Err(format!(
            "{BOOTSTRAP_ADMIN_VARIABLE} has an empty name or password"
        ));
    }
    let version = store
        .bootstrap_admin(name, &hash_password(password))
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "created the first administrator '{name}' (role '{ADMIN_ROLE}') in {}, policy version {version}",
        store.url()
    );
    Ok(())
}

/// Writes what `store` holds into `dir` as a catalog directory
/// (`catalog.toml`), which loads to the same state.
pub async fn export(store: &PolicyStore, dir: &Path) -> Result<PathBuf, String> {
    let stored = store.load().await.map_err(|e| e.to_string())?;
    let text = toml::to_string(&*stored.content)
        .map_err(|e| format!("cannot write the store as TOML: {e}"))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join("catalog.toml");
    let header = format!(
        "# Exported from {} at policy version {}.\n\n",
        store.url(),
        stored.version
    );
    std::fs::write(&path, header + &text)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}
