//! Finding a deployed stack's resources from its CloudFormation outputs, so operators name the
//! stack (`--stack`) and never copy queue URLs or table names by hand.

use super::classify;
use crate::config::Resources;
use crate::error::PortError;
use std::collections::BTreeMap;

/// The template's output keys for [`Resources`] (template.yaml `Outputs`).
pub const OUTPUT_KEYS: [&str; 6] = ["BucketName", "QueueUrl", "DeadLetterQueueUrl", "ManifestTableName", "DedupTableName", "RunsTableName"];

/// Every output of the stack, by key.
pub async fn stack_outputs(client: &aws_sdk_cloudformation::Client, stack: &str) -> Result<BTreeMap<String, String>, PortError> {
    let out = client.describe_stacks().stack_name(stack).send().await.map_err(|e| classify("cloudformation describe_stacks", e))?;
    let found = out.stacks().first().ok_or_else(|| PortError::permanent("cloudformation describe_stacks", format!("no stack named {stack}")))?;
    Ok(found
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
        .collect())
}

/// The file move's resources from a stack's outputs; a missing output is named.
pub fn resources_from_outputs(stack: &str, outputs: &BTreeMap<String, String>) -> Result<Resources, PortError> {
    let missing: Vec<&str> = OUTPUT_KEYS.iter().copied().filter(|k| !outputs.contains_key(*k)).collect();
    if !missing.is_empty() {
        return Err(PortError::permanent(
            "stack outputs",
            format!("stack {stack} has no output {} (is it deployed from this project's template.yaml?)", missing.join(", ")),
        ));
    }
    let get = |k: &str| outputs[k].clone();
    Ok(Resources {
        bucket: get("BucketName"),
        queue_url: get("QueueUrl"),
        dlq_url: get("DeadLetterQueueUrl"),
        manifest_table: get("ManifestTableName"),
        dedup_table: get("DedupTableName"),
        runs_table: get("RunsTableName"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_comes_from_its_output_and_a_missing_one_is_named() {
        let mut outputs: BTreeMap<String, String> = OUTPUT_KEYS.iter().map(|k| (k.to_string(), format!("v-{k}"))).collect();
        let r = resources_from_outputs("dtx", &outputs).unwrap();
        assert_eq!((r.bucket.as_str(), r.dlq_url.as_str(), r.runs_table.as_str()), ("v-BucketName", "v-DeadLetterQueueUrl", "v-RunsTableName"));
        outputs.remove("QueueUrl");
        outputs.remove("RunsTableName");
        let err = resources_from_outputs("dtx", &outputs).unwrap_err().to_string();
        assert!(err.contains("stack dtx has no output QueueUrl, RunsTableName"), "{err}");
    }
}
