//! `infercheck assets --out DIR`: what a user with only the binary needs
//! to watch their stack the way infercheck checks it — the Grafana
//! dashboards, the Prometheus rules with their promtool tests and
//! runbook, the PromQL query sets, a scrape-config snippet for
//! infercheck's own /metrics, and Grafana provisioning files that load
//! the dashboards from disk. The files are the repository's own, embedded
//! at build time, so what is written is what the test suite checked.

use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};

static DASHBOARDS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/dashboards");
static ALERTS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/alerts");
static QUERIES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/queries");

/// Scrape infercheck's own /metrics (`run --metrics-listen`).
const SCRAPE_CONFIG: &str = "\
# Add under scrape_configs: in prometheus.yml. infercheck serves its own
# /metrics while a run lasts when started with --metrics-listen ADDR (or
# [observe] metrics_listen); dashboards/load-test.json and
# alerts/infercheck.yml read it. Load the rules with:
#   rule_files: ['alerts/recording.yml', 'alerts/llm-serving.yml',
#                'alerts/gpu.yml', 'alerts/router.yml', 'alerts/infercheck.yml']
- job_name: infercheck
  scrape_interval: 5s
  static_configs:
    - targets: ['127.0.0.1:9464']   # the --metrics-listen address
";

/// Grafana provisioning: a Prometheus datasource and a provider that loads
/// the dashboards folder.
const GRAFANA_DATASOURCE: &str = "\
# Copy to /etc/grafana/provisioning/datasources/. Every dashboard selects
# its datasource through the `datasource` variable, so any Prometheus works.
apiVersion: 1
datasources:
  - name: Prometheus
    type: prometheus
    access: proxy
    url: http://prometheus:9090
    isDefault: true
";

const GRAFANA_DASHBOARDS: &str = "\
# Copy to /etc/grafana/provisioning/dashboards/ and point `path` at the
# dashboards/ folder this command wrote.
apiVersion: 1
providers:
  - name: infercheck
    folder: infercheck
    type: file
    allowUiUpdates: true
    options:
      path: /var/lib/grafana/dashboards/infercheck
";

/// Every file written, relative to `out`, with its contents.
fn files() -> Vec<(PathBuf, &'static [u8])> {
    let mut out = Vec::new();
    for (prefix, dir) in [
        ("dashboards", &DASHBOARDS),
        ("alerts", &ALERTS),
        ("queries", &QUERIES),
    ] {
        collect(dir, Path::new(prefix), &mut out);
    }
    out.push((
        "prometheus/scrape-infercheck.yml".into(),
        SCRAPE_CONFIG.as_bytes(),
    ));
    out.push((
        "grafana/provisioning/datasources/infercheck.yml".into(),
        GRAFANA_DATASOURCE.as_bytes(),
    ));
    out.push((
        "grafana/provisioning/dashboards/infercheck.yml".into(),
        GRAFANA_DASHBOARDS.as_bytes(),
    ));
    out
}

fn collect(dir: &'static Dir<'static>, prefix: &Path, out: &mut Vec<(PathBuf, &'static [u8])>) {
    for file in dir.files() {
        out.push((prefix.join(file.path()), file.contents()));
    }
    for sub in dir.dirs() {
        collect(sub, prefix, out);
    }
}

/// Writes every file under `out`; refuses to overwrite unless `force`.
/// Returns the paths written.
pub fn write(out: &Path, force: bool) -> Result<Vec<PathBuf>, String> {
    let files = files();
    if !force && let Some((path, _)) = files.iter().find(|(p, _)| out.join(p).exists()) {
        return Err(format!(
            "{} exists; pass --force to replace the files infercheck wrote before",
            out.join(path).display()
        ));
    }
    let mut written = Vec::new();
    for (path, contents) in files {
        let target = out.join(&path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&target, contents).map_err(|e| format!("{}: {e}", target.display()))?;
        written.push(target);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_file_is_the_repositorys() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let files = files();
        for (path, contents) in &files {
            let Ok(on_disk) = std::fs::read(root.join(path)) else {
                continue;
            };
            assert_eq!(&on_disk[..], *contents, "{}", path.display());
        }
        let has = |p: &str| files.iter().any(|(f, _)| f == Path::new(p));
        assert!(has("alerts/llm-serving.yml") && has("alerts/tests/llm-serving_test.yml"));
        assert!(has("queries/vllm.toml") && has("prometheus/scrape-infercheck.yml"));
        assert!(files.iter().any(|(f, _)| f.starts_with("dashboards")));
    }

    #[test]
    fn an_existing_file_is_not_overwritten_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let written = write(dir.path(), false).unwrap();
        assert!(written.len() > 10);
        let again = write(dir.path(), false).unwrap_err();
        assert!(again.contains("--force"), "{again}");
        assert_eq!(write(dir.path(), true).unwrap().len(), written.len());
    }
}
