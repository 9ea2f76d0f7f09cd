# Releases a resource only when the token has at least one submod and every submod's
# appraisal is "affirming".
package policy

import rego.v1

default allow := false

allow if {
	data.plugin == "resource"
	count(input.submods) > 0
	every _, sub in input.submods {
		sub["ear.status"] == "affirming"
	}
}
