/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sandbox's network, over rtnetlink: list links and addresses, update one interface
 * (found by MAC address, else by name: rename, MTU, addresses replaced, link up), list and
 * replace routes (main table). Every netlink answer is parsed with bounds checked against
 * the bytes received (RTA_OK / NLMSG_OK plus payload-size checks) before a field is read.
 * Updates are serialised by one lock: the network is the sandbox's, not a container's.
 */
#include "rt_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The netlink macros (NLMSG_DATA, RTA_NEXT, ...) cast away const: the messages parsed here are
 * handled through plain pointers for that reason, never written. */

#define NL_BUF 32768

static pthread_mutex_t net_lock = PTHREAD_MUTEX_INITIALIZER;

struct nlreq {
    struct nlmsghdr h;
    union {
        struct ifinfomsg ifi;
        struct ifaddrmsg ifa;
        struct rtmsg rt;
    } u;
    char attrs[512];
};

static int nl_open(struct cl_err *err)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        return cl_err_set(err, CL_EIO, "netlink socket: %s", strerror(errno));
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void add_attr(struct nlreq *r, unsigned short type, const void *data, size_t len)
{
    struct rtattr *a = (struct rtattr *)(void *)((char *)r + NLMSG_ALIGN(r->h.nlmsg_len));
    a->rta_type = type;
    a->rta_len = (unsigned short)RTA_LENGTH(len);
    memcpy(RTA_DATA(a), data, len);
    r->h.nlmsg_len = NLMSG_ALIGN(r->h.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

/* Sends r and reads until the ack (or, for a dump, NLMSG_DONE), calling fn on each answer. */
static int nl_talk(int fd, struct nlreq *r, int (*fn)(struct nlmsghdr *, void *), void *ctx,
                   const char *what, struct cl_err *err)
{
    static unsigned seq;
    r->h.nlmsg_seq = __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);
    r->h.nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
    if (send(fd, r, r->h.nlmsg_len, 0) < 0)
        return cl_err_set(err, CL_EIO, "netlink %s: send: %s", what, strerror(errno));
    CL_AUTO(cl_bytes) *buf = malloc(NL_BUF);
    if (!buf)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    for (;;) {
        ssize_t n = recv(fd, buf, NL_BUF, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return cl_err_set(err, CL_EIO, "netlink %s: recv: %s", what,
                              n < 0 ? strerror(errno) : "closed");
        size_t left = (size_t)n;
        for (struct nlmsghdr *h = (struct nlmsghdr *)(void *)buf; NLMSG_OK(h, left);
             h = NLMSG_NEXT(h, left)) {
            if (h->nlmsg_seq != r->h.nlmsg_seq)
                continue;
            if (h->nlmsg_type == NLMSG_DONE)
                return 0;
            if (h->nlmsg_type == NLMSG_ERROR) {
                if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
                    return cl_err_set(err, CL_EPARSE, "netlink %s: short error message", what);
                struct nlmsgerr *e = NLMSG_DATA(h);
                if (e->error == 0)
                    return 0;
                return cl_err_set(err, -e->error == EEXIST ? CL_EEXISTS : CL_EIO, "netlink %s: %s",
                                  what, strerror(-e->error));
            }
            if (fn && fn(h, ctx) < 0)
                return cl_err_set(err, CL_ELIMIT, "netlink %s: too many answers", what);
        }
    }
}

/* ---- links and addresses ---- */

struct ifaces {
    struct cl_agent_iface *v;
    size_t n, cap;
};

static int on_link(struct nlmsghdr *h, void *ctx)
{
    struct ifaces *l = ctx;
    if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg)))
        return 0;
    if (l->n == l->cap)
        return -1;
    struct ifinfomsg *ifi = NLMSG_DATA(h);
    struct cl_agent_iface *f = &l->v[l->n];
    memset(f, 0, sizeof *f);
    f->index = ifi->ifi_index;
    f->flags = ifi->ifi_flags;
    size_t len = h->nlmsg_len - NLMSG_LENGTH(sizeof *ifi);
    for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        size_t pl = RTA_PAYLOAD(a);
        if (a->rta_type == IFLA_IFNAME && pl > 0 && pl <= sizeof f->name) {
            memcpy(f->name, RTA_DATA(a), pl);
            f->name[sizeof f->name - 1] = 0;
        } else if (a->rta_type == IFLA_MTU && pl >= 4) {
            memcpy(&f->mtu, RTA_DATA(a), 4);
        } else if (a->rta_type == IFLA_ADDRESS && pl == 6) {
            const uint8_t *m = RTA_DATA(a);
            snprintf(f->hwaddr, sizeof f->hwaddr, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2],
                     m[3], m[4], m[5]);
        }
    }
    l->n++;
    return 0;
}

static int on_addr(struct nlmsghdr *h, void *ctx)
{
    struct ifaces *l = ctx;
    if (h->nlmsg_type != RTM_NEWADDR || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifaddrmsg)))
        return 0;
    struct ifaddrmsg *ifa = NLMSG_DATA(h);
    struct cl_agent_iface *f = NULL;
    for (size_t i = 0; i < l->n && !f; i++)
        if (l->v[i].index == (int)ifa->ifa_index)
            f = &l->v[i];
    if (!f || f->naddrs >= CL_AGENT_MAX_ADDRS ||
        (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6))
        return 0;
    size_t len = h->nlmsg_len - NLMSG_LENGTH(sizeof *ifa);
    const void *addr = NULL, *local = NULL;
    size_t want = ifa->ifa_family == AF_INET ? 4 : 16;
    for (struct rtattr *a = IFA_RTA(ifa); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (RTA_PAYLOAD(a) != want)
            continue;
        if (a->rta_type == IFA_ADDRESS)
            addr = RTA_DATA(a);
        else if (a->rta_type == IFA_LOCAL)
            local = RTA_DATA(a);
    }
    if (local)
        addr = local;
    if (!addr)
        return 0;
    struct cl_agent_ipaddr *ip = &f->addrs[f->naddrs++];
    ip->family = ifa->ifa_family == AF_INET ? 4 : 6;
    ip->prefix = ifa->ifa_prefixlen;
    inet_ntop(ifa->ifa_family, addr, ip->address, sizeof ip->address);
    return 0;
}

int cl_agent_net_list(struct cl_agent_iface **out, size_t *n, struct cl_err *err)
{
    struct ifaces l = {.cap = CL_AGENT_MAX_IFACES};
    if (!(l.v = calloc(l.cap, sizeof *l.v)))
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    int fd = nl_open(err);
    if (fd < 0) {
        free(l.v);
        return fd;
    }
    struct nlreq r;
    memset(&r, 0, sizeof r);
    r.h.nlmsg_len = NLMSG_LENGTH(sizeof r.u.ifi);
    r.h.nlmsg_type = RTM_GETLINK;
    r.h.nlmsg_flags = NLM_F_DUMP;
    int rc = nl_talk(fd, &r, on_link, &l, "list links", err);
    if (rc == 0) {
        memset(&r, 0, sizeof r);
        r.h.nlmsg_len = NLMSG_LENGTH(sizeof r.u.ifa);
        r.h.nlmsg_type = RTM_GETADDR;
        r.h.nlmsg_flags = NLM_F_DUMP;
        rc = nl_talk(fd, &r, on_addr, &l, "list addresses", err);
    }
    close(fd);
    if (rc < 0) {
        free(l.v);
        return rc;
    }
    *out = l.v;
    *n = l.n;
    return 0;
}

static int parse_ip(const char *s, int *family, uint8_t out[16], struct cl_err *err)
{
    if (inet_pton(AF_INET, s, out) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, s, out) == 1) {
        *family = AF_INET6;
        return 0;
    }
    return cl_err_set(err, CL_EINVAL, "'%.64s' is not an IPv4 or IPv6 address", s);
}

static int addr_change(int fd, int type, int index, const struct cl_agent_ipaddr *ip,
                       struct cl_err *err)
{
    uint8_t a[16];
    int fam = 0;
    if (parse_ip(ip->address, &fam, a, err) < 0)
        return err->code;
    if (ip->prefix > (fam == AF_INET ? 32u : 128u))
        return cl_err_set(err, CL_EINVAL, "address %s: prefix %u out of range", ip->address,
                          ip->prefix);
    struct nlreq r;
    memset(&r, 0, sizeof r);
    r.h.nlmsg_len = NLMSG_LENGTH(sizeof r.u.ifa);
    r.h.nlmsg_type = (unsigned short)type;
    r.h.nlmsg_flags = type == RTM_NEWADDR ? NLM_F_CREATE | NLM_F_REPLACE : 0;
    r.u.ifa.ifa_family = (unsigned char)fam;
    r.u.ifa.ifa_prefixlen = (unsigned char)ip->prefix;
    r.u.ifa.ifa_index = (unsigned)index;
    add_attr(&r, IFA_LOCAL, a, fam == AF_INET ? 4 : 16);
    add_attr(&r, IFA_ADDRESS, a, fam == AF_INET ? 4 : 16);
    return nl_talk(fd, &r, NULL, NULL, type == RTM_NEWADDR ? "add address" : "delete address", err);
}

static int link_set(int fd, int index, const char *name, uint32_t mtu, bool up, struct cl_err *err)
{
    struct nlreq r;
    memset(&r, 0, sizeof r);
    r.h.nlmsg_len = NLMSG_LENGTH(sizeof r.u.ifi);
    r.h.nlmsg_type = RTM_NEWLINK;
    r.u.ifi.ifi_family = AF_UNSPEC;
    r.u.ifi.ifi_index = index;
    r.u.ifi.ifi_change = IFF_UP;
    r.u.ifi.ifi_flags = up ? IFF_UP : 0;
    if (name)
        add_attr(&r, IFLA_IFNAME, name, strlen(name) + 1);
    if (mtu)
        add_attr(&r, IFLA_MTU, &mtu, 4);
    return nl_talk(fd, &r, NULL, NULL, "set link", err);
}

int cl_agent_net_update(const struct cl_agent_iface *want, struct cl_agent_iface *got,
                        struct cl_err *err)
{
    if (strlen(want->name) >= IFNAMSIZ)
        return cl_err_set(err, CL_EINVAL, "interface name '%.32s' too long", want->name);
    if (want->naddrs > CL_AGENT_MAX_ADDRS)
        return cl_err_set(err, CL_ELIMIT, "more than %d addresses", CL_AGENT_MAX_ADDRS);
    pthread_mutex_lock(&net_lock);
    struct cl_agent_iface *all = NULL;
    size_t n = 0;
    int rc = cl_agent_net_list(&all, &n, err);
    const struct cl_agent_iface *cur = NULL;
    for (size_t i = 0; rc == 0 && i < n && !cur; i++)
        if (want->hwaddr[0] && strcasecmp(all[i].hwaddr, want->hwaddr) == 0)
            cur = &all[i];
    for (size_t i = 0; rc == 0 && i < n && !cur; i++)
        if (!want->hwaddr[0] && want->name[0] && strcmp(all[i].name, want->name) == 0)
            cur = &all[i];
    if (rc == 0 && !cur)
        rc = cl_err_set(err, CL_ENOTFOUND, "no interface with hwAddr '%s' (name '%s')",
                        want->hwaddr, want->name);
    int fd = rc == 0 ? nl_open(err) : -1;
    if (rc == 0 && fd < 0)
        rc = fd;
    /* ---- rename (down first), MTU ---- */
    bool rename = rc == 0 && want->name[0] && strcmp(cur->name, want->name) != 0;
    if (rc == 0 && rename)
        rc = link_set(fd, cur->index, NULL, 0, false, err);
    if (rc == 0)
        rc = link_set(fd, cur->index, rename ? want->name : NULL, want->mtu, false, err);
    /* ---- addresses: the requested set replaces the current one ---- */
    for (size_t i = 0; rc == 0 && i < cur->naddrs; i++)
        rc = addr_change(fd, RTM_DELADDR, cur->index, &cur->addrs[i], err);
    for (size_t i = 0; rc == 0 && i < want->naddrs; i++)
        rc = addr_change(fd, RTM_NEWADDR, cur->index, &want->addrs[i], err);
    if (rc == 0)
        rc = link_set(fd, cur->index, NULL, 0, true, err);
    int index = cur ? cur->index : 0;
    if (fd >= 0)
        close(fd);
    free(all);
    all = NULL;
    if (rc == 0 && (rc = cl_agent_net_list(&all, &n, err)) == 0) {
        rc = cl_err_set(err, CL_ENOTFOUND, "interface %d vanished", index);
        for (size_t i = 0; i < n; i++)
            if (all[i].index == index) {
                *got = all[i];
                rc = 0;
            }
        free(all);
    }
    pthread_mutex_unlock(&net_lock);
    return rc;
}

/* ---- routes ---- */

struct routes {
    struct cl_agent_route *v;
    size_t n, cap;
    const struct cl_agent_iface *ifs;
    size_t nifs;
};

static int on_route(struct nlmsghdr *h, void *ctx)
{
    struct routes *l = ctx;
    if (h->nlmsg_type != RTM_NEWROUTE || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct rtmsg)))
        return 0;
    struct rtmsg *rt = NLMSG_DATA(h);
    if (rt->rtm_table != RT_TABLE_MAIN ||
        (rt->rtm_family != AF_INET && rt->rtm_family != AF_INET6) || rt->rtm_type != RTN_UNICAST)
        return 0;
    if (l->n == l->cap)
        return -1;
    struct cl_agent_route *r = &l->v[l->n];
    memset(r, 0, sizeof *r);
    r->family = rt->rtm_family == AF_INET ? 4 : 6;
    r->scope = rt->rtm_scope;
    size_t want = rt->rtm_family == AF_INET ? 4 : 16, len = h->nlmsg_len - NLMSG_LENGTH(sizeof *rt);
    char ip[INET6_ADDRSTRLEN];
    for (struct rtattr *a = RTM_RTA(rt); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        size_t pl = RTA_PAYLOAD(a);
        if (a->rta_type == RTA_OIF && pl >= 4) {
            int oif;
            memcpy(&oif, RTA_DATA(a), 4);
            for (size_t i = 0; i < l->nifs; i++)
                if (l->ifs[i].index == oif)
                    snprintf(r->device, sizeof r->device, "%s", l->ifs[i].name);
        } else if (pl == want && (a->rta_type == RTA_DST || a->rta_type == RTA_GATEWAY ||
                                  a->rta_type == RTA_PREFSRC)) {
            inet_ntop(rt->rtm_family, RTA_DATA(a), ip, sizeof ip);
            if (a->rta_type == RTA_DST)
                snprintf(r->dest, sizeof r->dest, "%s/%u", ip, rt->rtm_dst_len);
            else if (a->rta_type == RTA_GATEWAY)
                snprintf(r->gateway, sizeof r->gateway, "%s", ip);
            else
                snprintf(r->source, sizeof r->source, "%s", ip);
        }
    }
    /* IPv6 link-local and multicast routes the kernel makes itself are not the host's */
    if (r->family == 6 && (strncmp(r->dest, "fe80:", 5) == 0 || strncmp(r->dest, "ff00:", 5) == 0))
        return 0;
    l->n++;
    return 0;
}

int cl_agent_net_routes(struct cl_agent_route **out, size_t *n, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    struct cl_agent_iface *ifs = NULL;
    size_t nifs = 0;
    if (cl_agent_net_list(&ifs, &nifs, err) < 0)
        return err->code;
    struct routes l = {.cap = CL_AGENT_MAX_ROUTES, .ifs = ifs, .nifs = nifs};
    if (!(l.v = calloc(l.cap, sizeof *l.v))) {
        free(ifs);
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    int fd = nl_open(err);
    if (fd < 0) {
        free(ifs);
        free(l.v);
        return fd;
    }
    struct nlreq r;
    memset(&r, 0, sizeof r);
    r.h.nlmsg_len = NLMSG_LENGTH(sizeof r.u.rt);
    r.h.nlmsg_type = RTM_GETROUTE;
    r.h.nlmsg_flags = NLM_F_DUMP;
    int rc = nl_talk(fd, &r, on_route, &l, "list routes", err);
    close(fd);
    free(ifs);
    if (rc < 0) {
        free(l.v);
        return rc;
    }
    *out = l.v;
    *n = l.n;
    return 0;
}

/* The netlink request for one route (nothing sent): every field checked here. */
static int route_build(struct nlreq *rq, int type, const struct cl_agent_route *ro,
                       const struct cl_agent_iface *ifs, size_t nifs, struct cl_err *err)
{
    struct nlreq r;
    memset(&r, 0, sizeof r);
    r.h.nlmsg_len = NLMSG_LENGTH(sizeof r.u.rt);
    r.h.nlmsg_type = (unsigned short)type;
    r.h.nlmsg_flags = type == RTM_NEWROUTE ? NLM_F_CREATE | NLM_F_REPLACE : 0;
    r.u.rt.rtm_table = RT_TABLE_MAIN;
    /* a delete with a protocol only matches routes of that protocol (kernel ones are not) */
    r.u.rt.rtm_protocol = type == RTM_NEWROUTE ? RTPROT_BOOT : 0;
    r.u.rt.rtm_type = RTN_UNICAST;
    r.u.rt.rtm_scope =
        ro->gateway[0] ? RT_SCOPE_UNIVERSE : (unsigned char)(ro->scope ? ro->scope : RT_SCOPE_LINK);
    uint8_t a[16];
    int fam = ro->family == 6 ? AF_INET6 : AF_INET;
    if (ro->dest[0] && strcmp(ro->dest, "default") != 0) {
        char ip[64];
        snprintf(ip, sizeof ip, "%s", ro->dest);
        char *slash = strchr(ip, '/');
        unsigned len = 0;
        if (slash) {
            *slash = 0;
            uint64_t v = 0;
            if (cl_parse_u64(slash + 1, 0, 128, &v, "route prefix", err) < 0)
                return err->code;
            len = (unsigned)v;
        }
        if (parse_ip(ip, &fam, a, err) < 0)
            return cl_err_prefix(err, "route dest");
        if (!slash)
            len = fam == AF_INET ? 32 : 128;
        if (len > (fam == AF_INET ? 32u : 128u))
            return cl_err_set(err, CL_EINVAL, "route dest %s: prefix out of range", ro->dest);
        r.u.rt.rtm_dst_len = (unsigned char)len;
        add_attr(&r, RTA_DST, a, fam == AF_INET ? 4 : 16);
    }
    if (ro->gateway[0]) {
        int gf = 0;
        if (parse_ip(ro->gateway, &gf, a, err) < 0)
            return cl_err_prefix(err, "route gateway");
        fam = gf;
        add_attr(&r, RTA_GATEWAY, a, gf == AF_INET ? 4 : 16);
    }
    if (ro->source[0]) {
        int sf = 0;
        if (parse_ip(ro->source, &sf, a, err) < 0)
            return cl_err_prefix(err, "route source");
        add_attr(&r, RTA_PREFSRC, a, sf == AF_INET ? 4 : 16);
    }
    r.u.rt.rtm_family = (unsigned char)fam;
    if (ro->device[0]) {
        int oif = 0;
        for (size_t i = 0; i < nifs; i++)
            if (strcmp(ifs[i].name, ro->device) == 0)
                oif = ifs[i].index;
        if (!oif)
            return cl_err_set(err, CL_ENOTFOUND, "route device '%s' does not exist", ro->device);
        add_attr(&r, RTA_OIF, &oif, 4);
    }
    *rq = r;
    return 0;
}

static int route_change(int fd, int type, const struct cl_agent_route *ro,
                        const struct cl_agent_iface *ifs, size_t nifs, struct cl_err *err)
{
    struct nlreq r;
    if (route_build(&r, type, ro, ifs, nifs, err) < 0)
        return err->code;
    return nl_talk(fd, &r, NULL, NULL, type == RTM_NEWROUTE ? "add route" : "delete route", err);
}

int cl_agent_net_set_routes(const struct cl_agent_route *want, size_t n, struct cl_err *err)
{
    if (n > CL_AGENT_MAX_ROUTES)
        return cl_err_set(err, CL_ELIMIT, "more than %d routes", CL_AGENT_MAX_ROUTES);
    pthread_mutex_lock(&net_lock);
    struct cl_agent_route *cur = NULL;
    struct cl_agent_iface *ifs = NULL;
    size_t ncur = 0, nifs = 0;
    int fd = -1;
    int rc = cl_agent_net_routes(&cur, &ncur, err);
    if (rc == 0)
        rc = cl_agent_net_list(&ifs, &nifs, err);
    /* every requested route is checked before the current ones go */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct nlreq r;
        if ((rc = route_build(&r, RTM_NEWROUTE, &want[i], ifs, nifs, err)) < 0)
            cl_err_prefix(err, "routes[%zu]", i);
    }
    if (rc == 0 && (fd = nl_open(err)) < 0)
        rc = fd;
    /* the requested set replaces the main table's unicast routes; link routes first, so that
     * the gateways they make reachable exist when the routes through them are added */
    for (size_t i = 0; rc == 0 && i < ncur; i++)
        if (route_change(fd, RTM_DELROUTE, &cur[i], ifs, nifs, err) < 0)
            cl_debug("agent: delete route %s: %s", cur[i].dest, err->msg);
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; rc == 0 && i < n; i++)
            if ((want[i].gateway[0] != 0) == (pass == 1))
                if ((rc = route_change(fd, RTM_NEWROUTE, &want[i], ifs, nifs, err)) < 0)
                    cl_err_prefix(err, "routes[%zu] (%s via %s dev %s)", i, want[i].dest,
                                  want[i].gateway, want[i].device);
    if (fd >= 0)
        close(fd);
    free(cur);
    free(ifs);
    pthread_mutex_unlock(&net_lock);
    return rc;
}

/* ---- interface counters ---- */

int cl_agent_net_stats(struct cl_agent_netstat **out, size_t *n, struct cl_err *err)
{
    FILE *f = fopen("/proc/net/dev", "re");
    if (!f)
        return cl_err_set(err, CL_EIO, "/proc/net/dev: %s", strerror(errno));
    struct cl_agent_netstat *v = calloc(CL_AGENT_MAX_IFACES, sizeof *v);
    if (!v) {
        fclose(f);
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    char line[512];
    size_t k = 0;
    while (k < CL_AGENT_MAX_IFACES && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue; /* the two header lines */
        *colon = 0;
        const char *name = line;
        while (*name == ' ')
            name++;
        if (strcmp(name, "lo") == 0 || strlen(name) >= sizeof v[k].name)
            continue;
        unsigned long long c[16];
        if (sscanf(
                colon + 1,
                "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
                &c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &c[6], &c[7], &c[8], &c[9], &c[10],
                &c[11], &c[12], &c[13], &c[14], &c[15]) != 16)
            continue;
        struct cl_agent_netstat *s = &v[k++];
        strcpy(s->name, name);
        s->rx_bytes = c[0], s->rx_packets = c[1], s->rx_errors = c[2], s->rx_dropped = c[3];
        s->tx_bytes = c[8], s->tx_packets = c[9], s->tx_errors = c[10], s->tx_dropped = c[11];
    }
    fclose(f);
    *out = v;
    *n = k;
    return 0;
}
