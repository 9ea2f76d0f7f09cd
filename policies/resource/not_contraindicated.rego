# Releases a resource unless the CPU appraisal (or a device appraisal) is contraindicated.
package policy

import rego.v1

default allow := false

allow if {
	data.plugin == "resource"
	input.submods.cpu0["ear.status"] != "contraindicated"
	not contraindicated_device
}

contraindicated_device if {
	some name, sub in input.submods
	name != "cpu0"
	sub["ear.status"] == "contraindicated"
}
