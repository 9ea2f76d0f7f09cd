# Cloister's default attestation policy for device evidence (policy id "default_gpu").
#
# sampledevice: hardware 2 when its svn matches the reference value "device_svn".
#
# nvidia (local verification: the SPDM report signed by the device key, the device chain to
# NVIDIA's pinned Device Identity CA, the FWID and the nonce were checked by the verifier; no
# OCSP or RIM service was asked, so revocation and golden measurements are this policy's
# reference values):
#   hardware       2 a Hopper GPU whose identity chain verified
#   configuration  2 driver and VBIOS versions registered as "nvidia_driver_version" /
#                    "nvidia_vbios_version"; 36 otherwise
#   executables    3 every measurement index N equals (or is among) the reference value
#                    "nvidia_measurement_N"; 33 otherwise
package policy

import rego.v1

default hardware := 97

default configuration := 0

default executables := 0

trust_claims := {
	"configuration": configuration,
	"executables": executables,
	"file-system": 0,
	"hardware": hardware,
	"instance-identity": 0,
	"runtime-opaque": 0,
	"sourced-data": 0,
	"storage-opaque": 0,
}

rv(name) := v if {
	v := query_reference_value(name)
	v != null
}

matches(claim, name) if claim == rv(name)

matches(claim, name) if claim in rv(name)

hardware := 2 if input.sampledevice.svn in query_reference_value("device_svn")

hardware := 2 if input.sampledevice.svn == query_reference_value("device_svn")

# ---- nvidia ----

hardware := 2 if input.nvidia.arch == "Hopper"

nvidia_config_ok if {
	matches(input.nvidia.config.driver_version, "nvidia_driver_version")
	matches(input.nvidia.config.vbios_version, "nvidia_vbios_version")
}

configuration := 2 if nvidia_config_ok

configuration := 36 if {
	input.nvidia
	not nvidia_config_ok
}

nvidia_measurements_ok if {
	count(input.nvidia.measurements) > 0
	every index, value in input.nvidia.measurements {
		matches(value, sprintf("nvidia_measurement_%s", [index]))
	}
}

executables := 3 if nvidia_measurements_ok

executables := 33 if {
	input.nvidia
	not nvidia_measurements_ok
}
