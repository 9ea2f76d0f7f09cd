/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness: TCG2 / CCEL event logs. Parse, the JSON view of every event (details
 * of each type: strings, UEFI variables, device paths, AAEL), and replay of every register;
 * events point inside the input.
 */
#include <stdlib.h>
#include <string.h>

#include "tee/eventlog/eventlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cl_eventlog log;
    struct cl_err err = {0};
    if (cl_eventlog_parse(data, size, &log, &err) < 0) {
        if (!err.stage || err.msg[0] == '\0')
            abort();
        return 0;
    }
    for (size_t i = 0; i < log.n; i++)
        if (log.events[i].data < data || log.events[i].data + log.events[i].data_len > data + size)
            abort();
    json_t *j = cl_eventlog_to_json(&log, &err);
    if (j && json_array_size(j) != log.n)
        abort();
    json_decref(j);
    for (uint32_t idx = 0; idx < 5; idx++) {
        uint8_t out[64];
        size_t ol = 0;
        if (cl_eventlog_replay(&log, idx, CL_TCG_ALG_SHA384, out, &ol, &err) < 0 || ol != 48)
            abort();
    }
    cl_eventlog_clear(&log);
    return 0;
}
