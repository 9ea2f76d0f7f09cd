/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Event logs in the TCG PC Client crypto-agile format (TCG2 / the CC Event Log, CCEL, that
 * TDX firmware publishes in ACPI): parsing (bounded; the log borrows the caller's buffer),
 * replay of the digests into measurement registers, and trustee's JSON view of each event
 * ("uefi_event_logs": index, type_name, digests, event, details, digest_matches_event),
 * including the Attestation Agent's runtime events (AAEL, EV_EVENT_TAG "AAEL").
 */
#ifndef CL_TEE_EVENTLOG_H
#define CL_TEE_EVENTLOG_H

#include "tee/tee.h"

#define CL_EVENTLOG_MAX_EVENTS 16384  /* events in one log */
#define CL_EVENTLOG_MAX_DIGESTS 5     /* digests per event (one per bank) */
#define CL_EVENTLOG_MAX_EVENT 1048576 /* bytes of one event's data */

/* TCG algorithm ids. */
#define CL_TCG_ALG_SHA1 0x0004
#define CL_TCG_ALG_SHA256 0x000b
#define CL_TCG_ALG_SHA384 0x000c
#define CL_TCG_ALG_SHA512 0x000d
#define CL_TCG_ALG_SM3 0x0012

/* Event types used by callers. */
#define CL_TCG_EV_NO_ACTION 0x00000003u
#define CL_TCG_EV_EVENT_TAG 0x00000006u
#define CL_TCG_EV_EFI_BOOT_SERVICES_APPLICATION 0x80000003u

struct cl_eventlog_digest {
    uint16_t alg;
    uint8_t len;
    uint8_t value[64];
};

struct cl_eventlog_event {
    uint32_t index; /* PCR or CC measurement register index */
    uint32_t type;
    size_t ndigests;
    struct cl_eventlog_digest digests[CL_EVENTLOG_MAX_DIGESTS];
    const uint8_t *data; /* borrowed from the parsed buffer */
    uint32_t data_len;
};

struct cl_eventlog {
    struct cl_eventlog_event *events; /* owned */
    size_t n;
};

/* Parses a log: the first event is the SHA-1-format Spec ID event that declares the digest
 * sizes; events follow until the end of the buffer or 8 bytes of 0x00 or 0xFF (CCEL tables
 * are padded). Unknown event types and algorithms are refused (EPARSE naming the offset).
 * The log borrows buf. */
CL_MUST_CHECK int cl_eventlog_parse(const uint8_t *buf, size_t len, struct cl_eventlog *log,
                                    struct cl_err *err);
void cl_eventlog_clear(struct cl_eventlog *log);

/* The register `index` replayed from zeros with every digest of algorithm `alg` (EV_NO_ACTION
 * events are not extended). out must hold 64 bytes; *outlen gets the digest size. */
CL_MUST_CHECK int cl_eventlog_replay(const struct cl_eventlog *log, uint32_t index, uint16_t alg,
                                     uint8_t *out, size_t *outlen, struct cl_err *err);

/* TCG name of an event type ("EV_SEPARATOR", ...) or NULL when unknown. */
const char *cl_eventlog_type_name(uint32_t type);
/* "SHA-384", ... or NULL. */
const char *cl_eventlog_alg_name(uint16_t alg);

/* trustee's JSON view: a new array of {details, digest_matches_event, digests, event, index,
 * type_name}, or NULL (EPARSE when an event's data does not have its type's structure). */
json_t *cl_eventlog_to_json(const struct cl_eventlog *log, struct cl_err *err);
/* The "details" object of one event (new) — exposed for tests. */
json_t *cl_eventlog_details(const struct cl_eventlog_event *ev, struct cl_err *err);

#endif
