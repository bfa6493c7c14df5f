//! Writing a test's strata configuration: the shared servers, and per version its own
//! server_id, schemas and target namespaces.

use super::targets::Namespace;
use super::{env_url, unique_server_id};

/// One `[versions.<name>]` section.
pub struct VersionSpec {
    pub name: String,
    pub server_id: u32,
    pub schemas: Vec<String>,
    pub ns: Namespace,
    /// More lines for the version's table (e.g. `batch_max_rows = 10`).
    pub extra: String,
}

impl VersionSpec {
    /// A version reading `schemas` into `ns`, with a fresh server_id.
    pub fn new(name: &str, schemas: &[&str], ns: Namespace) -> VersionSpec {
        VersionSpec {
            name: name.to_owned(),
            server_id: unique_server_id(),
            schemas: schemas.iter().map(|s| (*s).to_owned()).collect(),
            ns,
            extra: String::new(),
        }
    }

    fn toml(&self) -> String {
        let schemas: Vec<String> = self.schemas.iter().map(|s| format!("\"{s}\"")).collect();
        format!(
            "[versions.{name}]\nserver_id = {id}\nschemas = [{schemas}]\n{extra}\n{targets}",
            name = self.name,
            id = self.server_id,
            schemas = schemas.join(", "),
            extra = self.extra,
            targets = self.ns.toml(&self.name),
        )
    }
}

/// The whole file: `source_url` as the source, the shared target servers from the
/// environment, state under `{data_dir}` (filled in by [`super::Strata::with_config`]).
pub fn config_toml(source_url: &str, versions: &[VersionSpec]) -> String {
    let mut out = format!(
        r#"[source]
url = "{source_url}"
heartbeat = "1s"
read_timeout = "10s"

[servers]
mongodb = {{ url = "{mongo}" }}
redis = {{ url = "{redis}" }}
opensearch = {{ url = "{search}" }}
postgres = {{ url = "{postgres}" }}

[defaults]
data_dir = "{{data_dir}}"
batch_max_delay = "20ms"

"#,
        mongo = env_url("STRATA_TEST_MONGO_URL"),
        redis = env_url("STRATA_TEST_REDIS_URL"),
        search = env_url("STRATA_TEST_OPENSEARCH_URL"),
        postgres = env_url("STRATA_TEST_POSTGRES_URL"),
    );
    for version in versions {
        out.push_str(&version.toml());
        out.push('\n');
    }
    out
}
