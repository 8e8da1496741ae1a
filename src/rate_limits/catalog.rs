//! Where profiles come from: built-in defaults, the user-level file and the
//! project file, each layer overriding the one before by `provider::model`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Serialize;

use super::defaults::builtin_profiles;
use super::extended::{CompanionEntry, CompanionError, COMPANION_FILE};
use super::profile::{normalize_name, profile_key, Profile, WILDCARD};
use crate::persist::{self, FileLock, PersistError};

/// Errors reading or changing a profile file.
#[derive(Debug, thiserror::Error)]
pub enum ProfileFileError {
    /// The file could not be read, parsed, locked or written.
    #[error(transparent)]
    Persist(#[from] PersistError),
    /// `remove` named a profile the file does not hold.
    #[error("no profile `{label}` in `{path}`")]
    NotFound {
        /// `provider/model`, normalised.
        label: String,
        /// The profile file.
        path: PathBuf,
    },
    /// An entry of the companion file breaks a rule.
    #[error("`{path}`: {source}")]
    Companion {
        /// The companion file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: CompanionError,
    },
}

/// The layer a profile was loaded from, lowest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// Compiled into specsmith.
    Builtin,
    /// `<config dir>/specsmith/model-rate-limits.json`.
    User,
    /// `<project>/.specsmith/model-rate-limits.json`.
    Project,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Builtin => "builtin",
            Layer::User => "user",
            Layer::Project => "project",
        })
    }
}

/// A profile together with the layer it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LayeredProfile {
    /// The profile.
    pub profile: Profile,
    /// Where it came from.
    pub layer: Layer,
}

/// One profile file: a JSON array of profile objects, as Python specsmith
/// writes it, joined with its companion file of the limits Python specsmith
/// does not know ([`super::extended`]).
#[derive(Debug, Clone)]
pub struct ProfileFile {
    path: PathBuf,
    profiles: Vec<Profile>,
    /// Companion entries whose profile is not in the file (removed by Python
    /// specsmith, say): kept as they are, so no limit is lost unseen.
    unjoined: Vec<CompanionEntry>,
}

/// The companion file beside the profile file `path`.
pub fn companion_path(path: &Path) -> PathBuf {
    path.with_file_name(COMPANION_FILE)
}

impl ProfileFile {
    /// Reads `path` and its companion file; a missing file holds no
    /// profiles. Never creates anything.
    pub fn load(path: &Path) -> Result<Self, ProfileFileError> {
        let mut profiles: Vec<Profile> = persist::read_json(path)?.unwrap_or_default();
        let companion = companion_path(path);
        let entries: Vec<CompanionEntry> = persist::read_json(&companion)?.unwrap_or_default();
        let mut unjoined = Vec::new();
        for entry in entries {
            let limits = entry
                .limits()
                .map_err(|source| ProfileFileError::Companion {
                    path: companion.clone(),
                    source,
                })?;
            let key = profile_key(&entry.provider, &entry.model);
            let mut joined = false;
            for profile in profiles.iter_mut().filter(|profile| profile.key() == key) {
                *profile = profile.clone().with_extended(limits.clone());
                joined = true;
            }
            if !joined {
                unjoined.push(entry);
            }
        }
        Ok(Self {
            path: path.to_owned(),
            profiles,
            unjoined,
        })
    }

    /// Reads `path` under its lock, lets `change` edit the profiles, and
    /// writes the result atomically. When `change` fails, or the file cannot
    /// be read, the file is left exactly as it was. The companion file is
    /// written when a profile holds a limit beyond RPM and TPM, and removed
    /// when none does any more.
    pub fn update<T>(
        path: &Path,
        change: impl FnOnce(&mut ProfileFile) -> Result<T, ProfileFileError>,
    ) -> Result<T, ProfileFileError> {
        let _lock = FileLock::acquire(path)?;
        let mut file = Self::load(path)?;
        let outcome = change(&mut file)?;
        let mut entries: Vec<CompanionEntry> = file
            .profiles
            .iter()
            .filter(|profile| !profile.extended().is_empty())
            .map(|profile| {
                CompanionEntry::new(profile.provider(), profile.model(), profile.extended())
            })
            .collect();
        entries.extend(file.unjoined.iter().cloned());
        // The profile file first: it is the one a refusal (read-only, no
        // room) most likely hits, and a crash between the two writes leaves
        // at worst a companion entry no profile joins, which is kept.
        persist::write_json(path, &file.profiles)?;
        let companion = companion_path(path);
        if entries.is_empty() {
            match std::fs::remove_file(&companion) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(PersistError::Write {
                        path: companion,
                        source,
                    }
                    .into())
                }
            }
        } else {
            persist::write_json(&companion, &entries)?;
        }
        Ok(outcome)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The profiles, in file order; a later duplicate key overrides an earlier one.
    pub fn profiles(&self) -> &[Profile] {
        &self.profiles
    }

    /// Creates or replaces the profile with `profile`'s key. A replacement
    /// keeps its place in the file and the fields this version does not use.
    pub fn upsert(&mut self, mut profile: Profile) {
        let key = profile.key();
        let Some(index) = self.profiles.iter().position(|p| p.key() == key) else {
            self.profiles.push(profile);
            return;
        };
        let mut kept_extra = std::mem::take(&mut self.profiles[index].extra);
        kept_extra.extend(std::mem::take(&mut profile.extra));
        profile.extra = kept_extra;
        self.profiles[index] = profile;
        // Later duplicates of the key were shadowed by this one; drop them.
        let mut first = true;
        self.profiles
            .retain(|p| p.key() != key || std::mem::take(&mut first));
    }

    /// Deletes the profile for `provider` / `model`; an error when there is none.
    pub fn remove(&mut self, provider: &str, model: &str) -> Result<Profile, ProfileFileError> {
        let key = profile_key(provider, model);
        let position = self.profiles.iter().position(|p| p.key() == key);
        let Some(index) = position else {
            return Err(ProfileFileError::NotFound {
                label: format!(
                    "{}/{}",
                    provider.trim().to_lowercase(),
                    model.trim().to_lowercase()
                ),
                path: self.path.clone(),
            });
        };
        let removed = self.profiles.remove(index);
        self.profiles.retain(|p| p.key() != key);
        Ok(removed)
    }

    /// Adds every profile in `defaults` whose key the file lacks; returns how many.
    pub fn install(&mut self, defaults: Vec<Profile>) -> usize {
        let mut added = 0;
        for profile in defaults {
            if !self.profiles.iter().any(|p| p.key() == profile.key()) {
                self.profiles.push(profile);
                added += 1;
            }
        }
        added
    }
}

/// The merged view of every layer.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Every layer added, the later ones over the earlier.
    layers: Merged,
    /// The built-in profiles under `layers`, for a catalog loaded with them:
    /// made on the first lookup that falls through to them, as a command
    /// resolves one profile and building all 21 cost it about a tenth of a
    /// bare process start.
    builtins: Option<OnceLock<Merged>>,
}

/// Layers merged by key.
#[derive(Debug, Clone, Default)]
struct Merged {
    entries: Vec<LayeredProfile>,
    /// By (provider, model): a pair, not a joined string, so no two pairs
    /// can share an entry whatever their names hold.
    index: HashMap<(String, String), usize>,
}

impl Merged {
    fn add(&mut self, layer: Layer, profiles: Vec<Profile>) {
        for profile in profiles {
            let entry = LayeredProfile { layer, profile };
            let key = pair_of(&entry.profile);
            match self.index.get(&key) {
                Some(&position) => self.entries[position] = entry,
                None => {
                    self.index.insert(key, self.entries.len());
                    self.entries.push(entry);
                }
            }
        }
    }

    fn get(&self, provider: &str, model: &str) -> Option<&LayeredProfile> {
        let position = self.index.get(&(provider.to_owned(), model.to_owned()))?;
        self.entries.get(*position)
    }
}

impl Catalog {
    /// Built-in profiles, then the user file (if any), then the project file.
    pub fn load(user_file: Option<&Path>, project_file: &Path) -> Result<Self, ProfileFileError> {
        let mut catalog = Self {
            layers: Merged::default(),
            builtins: Some(OnceLock::new()),
        };
        if let Some(path) = user_file {
            catalog.add_layer(Layer::User, ProfileFile::load(path)?.profiles);
        }
        catalog.add_layer(Layer::Project, ProfileFile::load(project_file)?.profiles);
        Ok(catalog)
    }

    /// Adds a layer on top of those already present.
    pub fn add_layer(&mut self, layer: Layer, profiles: Vec<Profile>) {
        self.layers.add(layer, profiles);
    }

    /// The built-in layer of a loaded catalog, made on first use.
    fn builtins(&self) -> Option<&Merged> {
        let builtins = self.builtins.as_ref()?;
        Some(builtins.get_or_init(|| {
            let mut merged = Merged::default();
            merged.add(Layer::Builtin, builtin_profiles());
            merged
        }))
    }

    /// Every effective profile, sorted by provider then model.
    pub fn sorted(&self) -> Vec<&LayeredProfile> {
        let mut entries: Vec<_> = self.layers.entries.iter().collect();
        if let Some(builtins) = self.builtins() {
            let shadowed = |entry: &LayeredProfile| {
                let key = pair_of(&entry.profile);
                self.layers.index.contains_key(&key)
            };
            entries.extend(builtins.entries.iter().filter(|entry| !shadowed(entry)));
        }
        entries.sort_by(|a, b| {
            (a.profile.provider(), a.profile.model())
                .cmp(&(b.profile.provider(), b.profile.model()))
        });
        entries
    }

    /// The profile that governs `provider` / `model`: the exact key, then
    /// `provider/*`, then `*/model`, then `*/*`; for each, the highest layer
    /// that has it.
    pub fn resolve(&self, provider: &str, model: &str) -> Option<&LayeredProfile> {
        let provider = normalize_name(provider)?;
        let model = normalize_name(model)?;
        let candidates = [
            (provider.as_str(), model.as_str()),
            (provider.as_str(), WILDCARD),
            (WILDCARD, model.as_str()),
            (WILDCARD, WILDCARD),
        ];
        for (provider, model) in candidates {
            if let Some(found) = self.layers.get(provider, model) {
                return Some(found);
            }
            if let Some(found) = self
                .builtins()
                .and_then(|builtins| builtins.get(provider, model))
            {
                return Some(found);
            }
        }
        None
    }
}

fn pair_of(profile: &Profile) -> (String, String) {
    (profile.provider().to_owned(), profile.model().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(provider: &str, model: &str, rpm: u64) -> Profile {
        Profile::new(provider, model, rpm, 1000, 0.7, 1).unwrap()
    }

    #[test]
    fn lookup_prefers_exact_then_provider_then_model_then_any() {
        let mut catalog = Catalog::default();
        catalog.add_layer(
            Layer::Project,
            vec![
                profile("acme", "big", 1),
                profile("acme", "*", 2),
                profile("*", "big", 3),
                profile("*", "*", 4),
            ],
        );
        let rpm = |p, m| catalog.resolve(p, m).unwrap().profile.rpm_limit();
        assert_eq!(rpm("ACME", " Big "), 1);
        assert_eq!(rpm("acme", "small"), 2);
        assert_eq!(rpm("other", "big"), 3);
        assert_eq!(rpm("other", "small"), 4);
    }

    #[test]
    fn a_loaded_catalog_has_the_builtins_under_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let (user, project) = (
            dir.path().join("user.json"),
            dir.path().join("project.json"),
        );
        let builtins_only = Catalog::load(Some(&user), &project).unwrap();
        let found = builtins_only.resolve("OpenAI", "gpt-4o").unwrap();
        assert_eq!(
            (found.layer, found.profile.rpm_limit()),
            (Layer::Builtin, 500)
        );
        assert_eq!(builtins_only.sorted().len(), 21);
        for (path, rpm) in [(&user, 7), (&project, 9)] {
            ProfileFile::update(path, |file| {
                file.upsert(profile("openai", "gpt-4o", rpm));
                file.upsert(profile("acme", "*", rpm));
                Ok(())
            })
            .unwrap();
        }
        let catalog = Catalog::load(Some(&user), &project).unwrap();
        let found = catalog.resolve("openai", "gpt-4o").unwrap();
        assert_eq!(
            (found.layer, found.profile.rpm_limit()),
            (Layer::Project, 9)
        );
        // A built-in exact match beats a file's wildcard, as before.
        let found = catalog.resolve("openai", "o1").unwrap();
        assert_eq!((found.layer, found.profile.model()), (Layer::Builtin, "o1"));
        assert_eq!(catalog.resolve("acme", "x").unwrap().profile.rpm_limit(), 9);
        let sorted = catalog.sorted();
        assert_eq!(sorted.len(), 22, "one overridden, one added");
        let gpt_4o: Vec<_> = sorted
            .iter()
            .filter(|entry| entry.profile.model() == "gpt-4o")
            .map(|entry| entry.layer)
            .collect();
        assert_eq!(gpt_4o, [Layer::Project]);
    }

    #[test]
    fn higher_layers_override_lower_ones_by_key() {
        let mut catalog = Catalog::default();
        catalog.add_layer(Layer::Builtin, builtin_profiles());
        catalog.add_layer(Layer::User, vec![profile("openai", "gpt-4o", 7)]);
        catalog.add_layer(Layer::Project, vec![profile("openai", "gpt-4o", 9)]);
        let found = catalog.resolve("openai", "gpt-4o").unwrap();
        assert_eq!(
            (found.layer, found.profile.rpm_limit()),
            (Layer::Project, 9)
        );
        assert_eq!(catalog.sorted().len(), 21);
        let fallback = catalog.resolve("openai", "unknown-model").unwrap();
        assert_eq!(fallback.profile.model(), "*");
        assert!(catalog.resolve("nobody", "nothing").is_none());
    }

    #[test]
    fn upsert_replaces_in_place_and_keeps_unknown_fields() {
        let mut file = ProfileFile {
            unjoined: Vec::new(),
            path: PathBuf::from("x.json"),
            profiles: vec![
                profile("a", "1", 1),
                profile("b", "2", 2),
                profile("a", "1", 3),
            ],
        };
        file.profiles[0]
            .extra
            .insert("tpm_thinking_budget".into(), 5.into());
        file.upsert(profile("A", "1", 10));
        let rpms: Vec<_> = file.profiles.iter().map(Profile::rpm_limit).collect();
        assert_eq!(rpms, vec![10, 2]);
        assert_eq!(file.profiles[0].extra["tpm_thinking_budget"], 5);
    }

    #[test]
    fn install_adds_only_missing_keys_and_remove_reports_absence() {
        let mut file = ProfileFile {
            unjoined: Vec::new(),
            path: PathBuf::from("x.json"),
            profiles: vec![profile("openai", "gpt-4o", 1)],
        };
        assert_eq!(file.install(builtin_profiles()), 20);
        assert_eq!(file.profiles[0].rpm_limit(), 1);
        assert_eq!(file.install(builtin_profiles()), 0);
        file.remove("OpenAI", "gpt-4o").unwrap();
        assert!(matches!(
            file.remove("openai", "gpt-4o"),
            Err(ProfileFileError::NotFound { .. })
        ));
    }
}
