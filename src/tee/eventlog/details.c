/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The "details" of each event type, as trustee's verifier shows them to policies: strings
 * for the text events, the UEFI variable fields, the UEFI device path of a loaded image in
 * the text form of the UEFI specification (the nodes trustee knows; others as
 * Path(type,subtype,hex)), and the Attestation Agent's runtime events (AAEL). Every field is
 * read through the cursor; a malformed structure fails the event (EPARSE).
 */
#include "tee/eventlog/eventlog.h"
#include "tee/tee_int.h"

#include <string.h>

#define DERR(...) cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_EVENTLOG, __VA_ARGS__)

/* ---- text helpers ---- */

static bool utf8_valid(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp = 0;
        size_t l = cl_utf8_seq(s + i, n - i, &cp);
        if (!l)
            return false;
        i += l;
    }
    return true;
}

/* A new JSON string of n bytes (which may hold NULs; jansson keeps the length). */
static json_t *jstr(const uint8_t *s, size_t n)
{
    return json_stringn((const char *)s, n);
}

/* UTF-16LE to UTF-8; lossy replaces unpaired surrogates with U+FFFD, strict fails. */
static json_t *utf16(const uint8_t *s, size_t nbytes, bool lossy)
{
    CL_AUTO(cl_bytes) *out = malloc(nbytes / 2 * 3 + 4);
    size_t o = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i + 1 < nbytes; i += 2) {
        uint32_t u = (uint32_t)s[i] | (uint32_t)s[i + 1] << 8;
        if (u >= 0xd800 && u <= 0xdbff && i + 3 < nbytes) {
            uint32_t lo = (uint32_t)s[i + 2] | (uint32_t)s[i + 3] << 8;
            if (lo >= 0xdc00 && lo <= 0xdfff) {
                u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                i += 2;
            }
        }
        if (u >= 0xd800 && u <= 0xdfff) {
            if (!lossy)
                return NULL;
            u = 0xfffd;
        }
        if (u < 0x80) {
            out[o++] = (uint8_t)u;
        } else if (u < 0x800) {
            out[o++] = (uint8_t)(0xc0 | u >> 6);
            out[o++] = (uint8_t)(0x80 | (u & 0x3f));
        } else if (u < 0x10000) {
            out[o++] = (uint8_t)(0xe0 | u >> 12);
            out[o++] = (uint8_t)(0x80 | ((u >> 6) & 0x3f));
            out[o++] = (uint8_t)(0x80 | (u & 0x3f));
        } else {
            out[o++] = (uint8_t)(0xf0 | u >> 18);
            out[o++] = (uint8_t)(0x80 | ((u >> 12) & 0x3f));
            out[o++] = (uint8_t)(0x80 | ((u >> 6) & 0x3f));
            out[o++] = (uint8_t)(0x80 | (u & 0x3f));
        }
    }
    return jstr(out, o);
}

static json_t *string_details(json_t *s)
{
    return s ? json_pack("{s:o}", "string", s) : NULL;
}

/* ---- per type ---- */

/* EV_POST_CODE, EV_ACTION, EV_EFI_ACTION, ...: the data is the text */
static json_t *simple(const struct cl_eventlog_event *ev, struct cl_err *err)
{
    if (!utf8_valid(ev->data, ev->data_len))
        return DERR("event text is not UTF-8"), NULL;
    return string_details(jstr(ev->data, ev->data_len));
}

/* UEFI_PLATFORM_FIRMWARE_BLOB2 / UEFI_HANDOFF_TABLE_POINTERS2: u8 size, description. The
 * description is read as its size minus one byte (the terminating NUL), as trustee does. */
static json_t *described(const struct cl_eventlog_event *ev, struct cl_err *err)
{
    if (ev->data_len < 1)
        return DERR("description size missing"), NULL;
    size_t n = ev->data[0];
    if (n == 0 || ev->data_len < n)
        return DERR("description of %zu bytes overruns the event", n), NULL;
    if (!utf8_valid(ev->data + 1, n - 1))
        return DERR("description is not UTF-8"), NULL;
    return string_details(jstr(ev->data + 1, n - 1));
}

/* EV_PLATFORM_CONFIG_FLAGS: vendor text; control characters dropped, 0x10 read as a space;
 * anything that is not UTF-8 shows as "". */
static json_t *config_flags(const struct cl_eventlog_event *ev, struct cl_err *err)
{
    (void)err;
    if (!utf8_valid(ev->data, ev->data_len))
        return string_details(json_string(""));
    CL_AUTO(cl_bytes) *out = malloc(ev->data_len + 1);
    size_t o = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < ev->data_len;) {
        uint32_t cp = 0;
        size_t l = cl_utf8_seq(ev->data + i, ev->data_len - i, &cp);
        if (cp == 0x10) {
            out[o++] = ' ';
        } else if (!(cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))) {
            memcpy(out + o, ev->data + i, l);
            o += l;
        }
        i += l;
    }
    return string_details(jstr(out, o));
}

/* EV_IPL: a C string; GCE writes UTF-16 after a 2e 00 prefix. */
static json_t *ipl(const struct cl_eventlog_event *ev, struct cl_err *err)
{
    const uint8_t *d = ev->data;
    size_t n = ev->data_len;
    if (n < 2)
        return DERR("EV_IPL data shorter than 2 bytes"), NULL;
    if (d[0] == 0x2e && d[1] == 0x00) {
        size_t end = n - 2;
        if (end == 0 || end % 2)
            return DERR("EV_IPL UTF-16 text malformed"), NULL;
        return string_details(utf16(d + 2, end - 2, true));
    }
    size_t cut = 0;
    while (cut < n && d[cut])
        cut++;
    if (utf8_valid(d, cut))
        return string_details(jstr(d, cut));
    return string_details(cl_tee_json_hex(d, n));
}

/* AAEL runtime event: "<domain> <operation> <content>", content JSON when it is an object or
 * an array. */
static json_t *aael(const uint8_t *s, size_t n)
{
    const uint8_t *sp1 = memchr(s, ' ', n);
    const uint8_t *sp2 = sp1 ? memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - s)) : NULL;
    json_t *data = NULL;
    if (sp2) {
        const uint8_t *c = sp2 + 1;
        size_t cl = n - (size_t)(c - s);
        json_t *content = NULL;
        if (cl && (c[0] == '{' || c[0] == '[')) {
            struct cl_err e = {0};
            content = cl_json_parse((const char *)c, cl, 32, &e);
        }
        if (!content)
            content = jstr(c, cl);
        data =
            json_pack("{s:o, s:o, s:o}", "content", content, "domain", jstr(s, (size_t)(sp1 - s)),
                      "operation", jstr(sp1 + 1, (size_t)(sp2 - sp1 - 1)));
    }
    json_t *d = json_pack("{s:o, s:s}", "string", jstr(s, n), "unicode_name", "AAEL");
    if (d && data)
        json_object_set_new(d, "data", data);
    return d;
}

/* EV_EVENT_TAG: TCG_PCClientTaggedEvent {u32 id, u32 size, data}; NULs dropped. */
static json_t *event_tag(const struct cl_eventlog_event *ev, struct cl_err *err)
{
    struct cl_cursor c = cl_cursor_init(ev->data, ev->data_len);
    uint32_t id = 0, size = 0;
    const uint8_t *p = NULL;
    if (cl_cursor_le32(&c, &id) < 0 || cl_cursor_le32(&c, &size) < 0 ||
        cl_cursor_take(&c, size, &p) < 0)
        return DERR("EV_EVENT_TAG truncated"), NULL;
    if (!utf8_valid(p, size))
        return DERR("EV_EVENT_TAG text is not UTF-8"), NULL;
    CL_AUTO(cl_bytes) *t = malloc(size + 1);
    size_t o = 0;
    if (!t)
        return NULL;
    for (size_t i = 0; i < size; i++)
        if (p[i])
            t[o++] = p[i];
    if (id == 0x4141454cu) /* "LEAA" on the wire: the Attestation Agent's event log */
        return aael(t, o);
    return string_details(jstr(t, o));
}

/* UEFI_VARIABLE_DATA {GUID, u64 name length (chars), u64 data length, name, data} */
static json_t *variable(const struct cl_eventlog_event *ev, struct cl_err *err)
{
    struct cl_cursor c = cl_cursor_init(ev->data, ev->data_len);
    const uint8_t *guid = NULL, *name = NULL, *val = NULL;
    uint64_t nl = 0, dl = 0;
    if (cl_cursor_take(&c, 16, &guid) < 0 || cl_cursor_le64(&c, &nl) < 0 ||
        cl_cursor_le64(&c, &dl) < 0)
        return DERR("UEFI variable event truncated"), NULL;
    if (nl > ev->data_len || cl_cursor_take(&c, (size_t)nl * 2, &name) < 0)
        return DERR("UEFI variable name overruns the event"), NULL;
    if (dl > ev->data_len || cl_cursor_take(&c, (size_t)dl, &val) < 0)
        return DERR("UEFI variable data overruns the event"), NULL;
    json_t *uname = utf16(name, (size_t)nl * 2, false);
    if (!uname)
        return DERR("UEFI variable name is not UTF-16"), NULL;
    char g[40];
    snprintf(g, sizeof g, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             guid[0], guid[1], guid[2], guid[3], guid[4], guid[5], guid[6], guid[7], guid[8],
             guid[9], guid[10], guid[11], guid[12], guid[13], guid[14], guid[15]);
    CL_AUTO(cl_str) *b64 = dl ? cl_b64_encode(val, (size_t)dl, CL_B64_STD) : strdup("");
    if (!b64) {
        json_decref(uname);
        return NULL;
    }
    return json_pack("{s:o, s:I, s:s, s:I, s:s}", "unicode_name", uname, "unicode_name_length",
                     (json_int_t)nl, "variable_data", b64, "variable_data_length", (json_int_t)dl,
                     "variable_name", g);
}

/* ---- UEFI device paths ---- */

static void guid_text(const uint8_t *g, char *out, size_t cap)
{
    snprintf(out, cap, "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X", g[3],
             g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13],
             g[14], g[15]);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* One node as text, or NULL when the node is one trustee prints generically. */
static json_t *node_text(uint8_t type, uint8_t sub, const uint8_t *d, size_t n)
{
    char buf[512];
    if (type == 1 && sub == 1 && n >= 2) { /* PCI: function, device */
        snprintf(buf, sizeof buf, "Pci(%u,%u)", d[0], d[1]);
        return json_string(buf);
    }
    if (type == 2 && sub == 1 && n >= 8) { /* ACPI: _HID (EISA id), _UID */
        uint32_t hid = le32(d), uid = le32(d + 4);
        if ((hid & 0xffff) == 0x41d0) /* compressed "PNP" */
            snprintf(buf, sizeof buf, "ACPI(PNP%04X,%u)", hid >> 16, uid);
        else
            snprintf(buf, sizeof buf, "ACPI(%c%c%c%04X,%u)", '@' + ((hid >> 10) & 0x1f),
                     '@' + ((hid >> 5) & 0x1f), '@' + (hid & 0x1f), hid >> 16, uid);
        return json_string(buf);
    }
    if (type == 4 && sub == 1 && n >= 38) { /* hard drive */
        uint32_t part = le32(d);
        uint64_t start = le64(d + 4), size = le64(d + 12);
        char sig[48], extra[64] = "";
        if (d[36] == 1)
            snprintf(sig, sizeof sig, "MBR,%#010x", le32(d + 20));
        else if (d[36] == 2) {
            char g[40];
            guid_text(d + 20, g, sizeof g);
            snprintf(sig, sizeof sig, "GPT,%s", g);
        } else
            return NULL;
        if (part != 0)
            snprintf(extra, sizeof extra, ",%#llx,%#llx", (unsigned long long)start,
                     (unsigned long long)size);
        snprintf(buf, sizeof buf, "HD(%u,%s%s)", part, sig, extra);
        return json_string(buf);
    }
    if (type == 4 && sub == 3 && n >= 16) { /* vendor media */
        char g[40];
        guid_text(d, g, sizeof g);
        CL_AUTO(cl_str) *hex = cl_hex_encode(d + 16, n - 16);
        CL_AUTO(cl_str) *s = hex ? cl_strdupf("VenMedia(%s,%s)", g, hex) : NULL;
        return s ? json_string(s) : NULL;
    }
    if (type == 4 && sub == 4 && n >= 2 && n % 2 == 0) { /* file path, UTF-16 with a NUL */
        CL_AUTO(json_t) *name = utf16(d, n - 2, true);
        CL_AUTO(cl_str) *s = name ? cl_strdupf("File(%s)", json_string_value(name)) : NULL;
        return s ? json_string(s) : NULL;
    }
    return NULL;
}

/* UEFI_IMAGE_LOAD_EVENT {u64 location, u64 length, u64 link address, u64 path length, path} */
static json_t *image_load(const struct cl_eventlog_event *ev, struct cl_err *err)
{
    if (ev->data_len < 32)
        return DERR("image load event shorter than 32 bytes"), NULL;
    uint64_t plen = le64(ev->data + 24);
    /* no path, or one that overruns the event: nothing to show */
    if (plen < 4 || plen - 4 >= ev->data_len - 32)
        return json_object();
    struct cl_cursor c = cl_cursor_init(ev->data + 32, (size_t)plen - 4); /* without the end node */
    CL_AUTO(json_t) *paths = json_array();
    if (!paths)
        return NULL;
    while (cl_cursor_left(&c)) {
        uint8_t type = 0, sub = 0;
        uint16_t len = 0;
        const uint8_t *d = NULL;
        if (cl_cursor_u8(&c, &type) < 0 || cl_cursor_u8(&c, &sub) < 0 ||
            cl_cursor_le16(&c, &len) < 0 || len < 4 || cl_cursor_take(&c, (size_t)len - 4, &d) < 0)
            return DERR("device path node truncated"), NULL;
        json_t *t = node_text(type, sub, d, (size_t)len - 4);
        if (!t) {
            CL_AUTO(cl_str) *hex = cl_hex_encode(d, (size_t)len - 4);
            CL_AUTO(cl_str) *s = hex ? cl_strdupf("Path(%u,%u,%s)", type, sub, hex) : NULL;
            t = s ? json_string(s) : NULL;
        }
        if (!t || json_array_append_new(paths, t) < 0)
            return NULL;
    }
    return json_pack("{s:O}", "device_paths", paths);
}

json_t *cl_eventlog_details(const struct cl_eventlog_event *ev, struct cl_err *err)
{
    CL_TEE_ERR(err);
    cl_err_clear(err);
    json_t *d = NULL;
    switch (ev->type) {
    case 0x1:        /* EV_POST_CODE */
    case 0x5:        /* EV_ACTION */
    case 0xc:        /* EV_COMPACT_HASH */
    case 0x12:       /* EV_OMIT_BOOT_DEVICE_EVENTS */
    case 0x80000007: /* EV_EFI_ACTION */
        d = simple(ev, err);
        break;
    case 0x6:
        d = event_tag(ev, err);
        break;
    case 0xa:
        d = config_flags(ev, err);
        break;
    case 0xd:
        d = ipl(ev, err);
        break;
    case 0x80000001: /* EV_EFI_VARIABLE_DRIVER_CONFIG */
    case 0x80000002: /* EV_EFI_VARIABLE_BOOT */
    case 0x8000000c: /* EV_EFI_VARIABLE_BOOT2 */
    case 0x800000e0: /* EV_EFI_VARIABLE_AUTHORITY */
        d = variable(ev, err);
        break;
    case 0x80000003:
        d = image_load(ev, err);
        break;
    case 0x8000000a: /* EV_EFI_PLATFORM_FIRMWARE_BLOB2 */
    case 0x8000000b: /* EV_EFI_HANDOFF_TABLES2 */
        d = described(ev, err);
        break;
    default:
        d = json_object();
        break;
    }
    if (!d && err->code == 0)
        cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_EVENTLOG, "out of memory");
    return d;
}
