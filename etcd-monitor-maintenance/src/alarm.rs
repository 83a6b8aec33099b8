//! `etcd-monitor alarm list|disarm`.

use anyhow::anyhow;
use etcd_client::{AlarmAction, AlarmOptions, AlarmType};
use etcd_monitor_exporter::snapshot::{ActiveAlarm, ClusterSnapshot};
use serde::Serialize;

use crate::cluster::{one_line, Inspector};
use crate::{Error, Result};

/// The alarms as the exporter's collector read them; an error when they could not be read (alarms go
/// through raft, so they need a quorum).
pub fn alarms_of(snap: &ClusterSnapshot) -> Result<Vec<ActiveAlarm>> {
    match snap.collectors.iter().find(|c| c.collector == "alarms") {
        Some(c) if c.success => Ok(snap.alarms.clone()),
        Some(c) => Err(Error::Failed(anyhow!(
            "cannot read the alarms: {}",
            c.error.as_deref().unwrap_or("unknown error")
        ))),
        None => Err(Error::Failed(anyhow!("the alarms were not read"))),
    }
}

pub async fn list(inspector: &mut Inspector) -> Result<Vec<ActiveAlarm>> {
    let snap = inspector.snapshot().await;
    alarms_of(&snap)
}

/// Warnings about disarming a NOSPACE alarm while the member's database still fills its quota: etcd
/// raises it again on the next write. Pure.
pub fn disarm_warnings(snap: &ClusterSnapshot) -> Vec<String> {
    let mut out = Vec::new();
    for a in snap.alarms.iter().filter(|a| a.alarm == "NOSPACE") {
        let Some(m) = snap.members.iter().find(|m| m.name == a.member) else {
            continue;
        };
        if let (Some(s), Some(q)) = (&m.status, m.quota_bytes) {
            if s.db_size_bytes as u64 >= q {
                out.push(format!(
                    "member {}'s database is {} bytes, at or above its quota of {q} bytes: the NOSPACE \
                     alarm comes back on the next write; compact and defragment first",
                    m.name, s.db_size_bytes
                ));
            }
        }
    }
    out
}

#[derive(Debug, Clone, Serialize)]
pub struct DisarmReport {
    pub disarmed: Vec<ActiveAlarm>,
    pub remaining: Vec<ActiveAlarm>,
    pub warnings: Vec<String>,
}

/// Deactivates every active alarm, one by one, as etcdctl does; then lists what is left.
pub async fn disarm(inspector: &mut Inspector) -> Result<DisarmReport> {
    let snap = inspector.snapshot().await;
    let alarms = alarms_of(&snap)?;
    let warnings = disarm_warnings(&snap);
    let mut client = inspector.client();
    let limit = inspector.settings().member_timeout + inspector.target().dial_timeout;
    let mut disarmed = Vec::new();
    for a in &alarms {
        let kind = AlarmType::from_str_name(&a.alarm)
            .ok_or_else(|| Error::Failed(anyhow!("unknown alarm type {:?}", a.alarm)))?;
        let id = u64::from_str_radix(&a.member_id, 16)
            .map_err(|_| Error::Failed(anyhow!("bad member id {:?}", a.member_id)))?;
        let mut options = AlarmOptions::new();
        options.with_member(id);
        match tokio::time::timeout(
            limit,
            client.alarm(AlarmAction::Deactivate, kind, Some(options)),
        )
        .await
        {
            Ok(Ok(_)) => disarmed.push(a.clone()),
            Ok(Err(e)) => {
                return Err(Error::Failed(anyhow!(
                    "disarming {} on {}: {}",
                    a.alarm,
                    a.member,
                    one_line(&e.to_string())
                )))
            }
            Err(_) => {
                return Err(Error::Failed(anyhow!(
                    "disarming {} on {}: no answer within {}",
                    a.alarm,
                    a.member,
                    humantime::format_duration(limit)
                )))
            }
        }
    }
    let after = inspector.snapshot().await;
    Ok(DisarmReport {
        disarmed,
        remaining: alarms_of(&after)?,
        warnings,
    })
}
