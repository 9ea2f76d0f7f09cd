# Cloister's default attestation policy for CPU evidence (policy id "default_cpu").
#
# It turns the verifier's claims into AR4SI trust-vector claims, comparing them with the
# reference values the workload owner registered (query_reference_value(name) returns the
# registered value, or null when there is none or it has expired). A claim the policy cannot
# recognise keeps its "not recognised" value, so an unconfigured deployment appraises as
# contraindicated rather than affirming:
#
#   executables    3 recognised runtime      33 unrecognised runtime
#   hardware       2 genuine, up-to-date TCB 97 hardware not recognised
#   configuration  2 approved configuration  36 configuration unavailable or unapproved
#
# The input is the annotated evidence of one submod: {"<tee>": {claims}, "report_data",
# "runtime_data_claims", "init_data", "init_data_claims"}.
package policy

import rego.v1

default executables := 33

default hardware := 97

default configuration := 36

default file_system := 0

default instance_identity := 0

default runtime_opaque := 0

default storage_opaque := 0

default sourced_data := 0

rv(name) := v if {
	v := query_reference_value(name)
	v != null
}

# A claim matches when it equals the reference value or is one of its members.
matches(claim, name) if claim in rv(name)

matches(claim, name) if claim == rv(name)

trust_claims := {
	"configuration": configuration,
	"executables": executables,
	"file-system": file_system,
	"hardware": hardware,
	"instance-identity": instance_identity,
	"runtime-opaque": runtime_opaque,
	"sourced-data": sourced_data,
	"storage-opaque": storage_opaque,
}

# ---- sample (no hardware root; only with allow_sample_tee_insecure) ----

executables := 3 if matches(input.sample.launch_digest, "launch_digest")

hardware := 2 if {
	matches(input.sample.svn, "svn")
	input.sample.platform_version.major == rv("major_version")[_]
	input.sample.platform_version.minor >= rv("minimum_minor_version")[_]
}

hardware := 2 if {
	matches(input.sample.svn, "svn")
	input.sample.platform_version.major == rv("major_version")
	input.sample.platform_version.minor >= rv("minimum_minor_version")
}

configuration := 2 if input.sample.debug == false

# ---- AMD SEV-SNP ----

executables := 3 if matches(input.snp.measurement, "snp_launch_measurement")

hardware := 2 if {
	matches(input.snp.reported_tcb_bootloader, "snp_bootloader")
	matches(input.snp.reported_tcb_microcode, "snp_microcode")
	matches(input.snp.reported_tcb_snp, "snp_snp_svn")
	matches(input.snp.reported_tcb_tee, "snp_tee_svn")
}

configuration := 2 if {
	input.snp.policy_debug_allowed == false
	input.snp.policy_migrate_ma == false
	matches(input.snp.platform_smt_enabled, "snp_smt_enabled")
	matches(input.snp.platform_tsme_enabled, "snp_tsme_enabled")
	matches(input.snp.policy_abi_major, "snp_guest_abi_major")
	matches(input.snp.policy_abi_minor, "snp_guest_abi_minor")
	matches(input.snp.policy_single_socket, "snp_single_socket")
	matches(input.snp.policy_smt_allowed, "snp_smt_allowed")
}

else := 3 if {
	input.snp.policy_debug_allowed == false
	input.snp.policy_migrate_ma == false
}

# ---- Intel TDX ----

executables := 3 if {
	matches(input.tdx.quote.body.rtmr_1, "rtmr_1")
	matches(input.tdx.quote.body.rtmr_2, "rtmr_2")
}

hardware := 2 if {
	input.tdx.quote.header.tee_type == "81000000"
	input.tdx.quote.header.vendor_id == "939a7233f79c4ca9940a0db3957f0607"
	matches(input.tdx.quote.body.mr_td, "mr_td")
	input.tdx.tcb_status == "UpToDate"
}

configuration := 2 if {
	input.tdx.td_attributes.debug == false
	matches(input.tdx.quote.body.xfam, "xfam")
}

# ---- Azure confidential VMs (vTPM) ----

executables := 3 if {
	matches(input["az-snp-vtpm"].measurement, "measurement")
	matches(input["az-snp-vtpm"].tpm.pcr11, "snp_pcr11")
}

hardware := 2 if {
	matches(input["az-snp-vtpm"].reported_tcb_bootloader, "tcb_bootloader")
	matches(input["az-snp-vtpm"].reported_tcb_microcode, "tcb_microcode")
	matches(input["az-snp-vtpm"].reported_tcb_snp, "tcb_snp")
	matches(input["az-snp-vtpm"].reported_tcb_tee, "tcb_tee")
}

configuration := 2 if {
	matches(input["az-snp-vtpm"].platform_smt_enabled, "smt_enabled")
	matches(input["az-snp-vtpm"].platform_tsme_enabled, "tsme_enabled")
	matches(input["az-snp-vtpm"].policy_abi_major, "abi_major")
	matches(input["az-snp-vtpm"].policy_abi_minor, "abi_minor")
	matches(input["az-snp-vtpm"].policy_single_socket, "single_socket")
	matches(input["az-snp-vtpm"].policy_smt_allowed, "smt_allowed")
}

executables := 3 if matches(input["az-tdx-vtpm"].tpm.pcr11, "tdx_pcr11")

hardware := 2 if {
	input["az-tdx-vtpm"].quote.header.tee_type == "81000000"
	input["az-tdx-vtpm"].quote.header.vendor_id == "939a7233f79c4ca9940a0db3957f0607"
	matches(input["az-tdx-vtpm"].quote.body.mr_td, "mr_td")
	input["az-tdx-vtpm"].tcb_status == "UpToDate"
}

configuration := 2 if matches(input["az-tdx-vtpm"].quote.body.xfam, "xfam")

# ---- Arm CCA (claims in trustee's names; byte values in standard base64) ----

executables := 3 if matches(input.cca.realm["cca-realm-initial-measurement"], "cca_realm_initial_measurement")

hardware := 2 if {
	matches(input.cca.platform["cca-platform-implementation-id"], "cca_platform_implementation_id")
	every c in input.cca.platform["cca-platform-sw-components"] {
		c["measurement-value"] in rv("cca_platform_sw_measurements")
	}
}

configuration := 2 if matches(input.cca.platform["cca-platform-config"], "cca_platform_config")

# ---- Hygon CSV (debugging is refused by the verifier; NODBG is checked again here) ----

executables := 3 if matches(input.csv.measure, "csv_measure")

hardware := 2 if {
	matches(input.csv.policy.api_major, "csv_api_major")
	matches(input.csv.policy.api_minor, "csv_api_minor")
}

configuration := 2 if {
	input.csv.policy.nodbg == true
	matches(input.csv.user_pubkey_digest, "csv_user_pubkey_digest")
}

# ---- generic TPM: the AK must be one the owner trusts ----

hardware := 2 if input.tpm

executables := 3 if {
	matches(input.tpm.pcr11, "tpm_pcr11")
	matches(input.tpm.ak_public, "trusted_aks")
}

configuration := 0 if input.tpm
