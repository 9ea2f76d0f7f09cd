# Cloister's default attestation policy for device evidence (policy id "default_gpu").
# sampledevice: hardware 2 when its svn matches the reference value "device_svn".
package policy

import rego.v1

default hardware := 97

trust_claims := {
	"configuration": 0,
	"executables": 0,
	"file-system": 0,
	"hardware": hardware,
	"instance-identity": 0,
	"runtime-opaque": 0,
	"sourced-data": 0,
	"storage-opaque": 0,
}

hardware := 2 if input.sampledevice.svn in query_reference_value("device_svn")

hardware := 2 if input.sampledevice.svn == query_reference_value("device_svn")
