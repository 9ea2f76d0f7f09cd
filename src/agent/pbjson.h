/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Protobuf-c messages ↔ the JSON shape the Kata agent feeds its policy (serde_json of the
 * rust-protobuf structs), by a generic walk over protobuf-c descriptors:
 *   - every field present; key = proto field name verbatim, Rust keywords get a trailing "_"
 *     ("type" → "type_");
 *   - string, bool, numbers (int64/uint64 too) and enums (as integers) with proto3 defaults;
 *     bytes as an array of integers; an unset message null; repeated []; map {};
 *   - proto3 `optional` (a synthetic oneof opt_<field>): the value, or null when unset;
 *   - the one real oneof (oci.proto LinuxSyscall.ErrnoRet): null, or {"errnoret": v} under
 *     the key "ErrnoRet" — protobuf-c keeps no oneof names, so a table in pbjson.c names it.
 * uint64 values above INT64_MAX become JSON reals (jansson's integers are signed 64-bit).
 *
 * Unpacking host bytes is bounded: a budgeted allocator caps the memory protobuf-c may spend
 * (CL_AGENT_MAX_UNPACK_MEM), the JSON walk caps nodes and repeated counts; the reverse walk
 * caps depth. Nothing here knows about policies or ttrpc; it is tested alone.
 */
#ifndef CL_AGENT_PBJSON_H
#define CL_AGENT_PBJSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

#include "base/base.h"

#define CL_AGENT_MAX_UNPACK_MEM (64u << 20) /* bytes protobuf-c may allocate for one request */
#define CL_AGENT_MAX_JSON_NODES (1u << 20)  /* JSON values built for one request */
#define CL_AGENT_MAX_REPEATED                                                                      \
    (1u << 14)                /* elements of one repeated field or map (a pod has tens) */
#define CL_AGENT_MAX_DEPTH 32 /* message nesting (Kata's schema needs 8) */

#define CL_AGENT_STAGE_DECODE "decode" /* protobuf bytes → message */
#define CL_AGENT_STAGE_JSON "json"     /* message ↔ JSON */

/*
 * Unpacks buf[len] as a message of type d with the budgeted allocator. Returns new (free with
 * cl_agent_pb_free) or NULL: EPARSE "<Message>: malformed protobuf" (truncated, bad wire type,
 * invalid UTF-8 in a string), ELIMIT when the unpack budget is exceeded.
 */
ProtobufCMessage *cl_agent_pb_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                                     size_t len, struct cl_err *err);
/* Frees a message from cl_agent_pb_unpack or cl_agent_json_to_pb. NULL is fine. */
void cl_agent_pb_free(ProtobufCMessage *m);

/* The serde JSON of m (borrowed). Returns new, or NULL with ELIMIT naming the field whose
 * count or the node budget was exceeded, ENOMEM. */
json_t *cl_agent_pb_to_json(const ProtobufCMessage *m, struct cl_err *err);

/* The Rust/serde key of a field: "type_" for "type", else the name. Returns borrowed (static
 * or the descriptor's). */
const char *cl_agent_pb_json_key(const char *field_name);

enum cl_agent_j2p_mode {
    CL_AGENT_J2P_STRICT,  /* unknown keys refused by name (agent-ctl) */
    CL_AGENT_J2P_LENIENT, /* unknown keys dropped, as serde does (recorded vectors) */
};

/*
 * Builds a message of type d from j (borrowed): the reverse walk. Missing keys take defaults;
 * null means unset; enums accept integers or value names; bytes accept an array of integers
 * or a string (its UTF-8 bytes); integers are range-checked for the field's type. Returns
 * new (free with cl_agent_pb_free) or NULL: EINVAL naming the path ("OCI.Process.User.UID:
 * 4294967296 out of range for uint32"), ELIMIT beyond CL_AGENT_MAX_DEPTH.
 */
ProtobufCMessage *cl_agent_json_to_pb(const ProtobufCMessageDescriptor *d, const json_t *j,
                                      enum cl_agent_j2p_mode mode, struct cl_err *err);

#endif
