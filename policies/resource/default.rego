# Cloister's default resource policy (trustee's default semantics).
#
# input: the verified attestation token claims (EAR: {"submods": {"cpu0": {"ear.status",
#        "ear.trustworthiness-vector", "ear.veraison.annotated-evidence": {"<tee>": ...}}}}).
# data:  {"plugin": "resource", "resource-path": [repo, type, tag], "query": {...},
#         "settings": {"allow_sample_tee_insecure": bool}}
#
# Releases a resource when the token carries verified CPU evidence from a real TEE. Evidence
# of the sample TEE (no hardware root) is accepted only when the KBS runs with
# allow_sample_tee_insecure. Like trustee's default it does not look at ear.status: to release
# only to affirming appraisals, load affirming.rego instead.
package policy

import rego.v1

default allow := false

evidence := input.submods.cpu0["ear.veraison.annotated-evidence"]

allow if {
	data.plugin == "resource"
	is_object(evidence)
	not evidence.sample
}

allow if {
	data.plugin == "resource"
	is_object(evidence.sample)
	data.settings.allow_sample_tee_insecure == true
}
