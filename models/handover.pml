/*
 * handover.pml -- Promela model of xdc's graceful namespace handover, cancel and forced failover.
 *
 * Checked by spin 6.5.2 through scripts/check-models.sh; models/README.md says what is proven,
 * within which bounds, and how the model maps to the C++ code.
 *
 * Compile-time parameters (spin -DNAME=value ...):
 *   NC    clusters (2 or 3)                                   default 2
 *   MAXW  acknowledged client writes in a run                  default 3
 *   MAXH  graceful handover attempts in a run                  default 2
 *   MAXF  forced failovers in a run (0: graceful-only run)     default 0
 *   BROKEN                the source leaves HANDOVER on its own timeout (handover_broken.pml)
 *   LATEST_DECISION_ONLY  the target answers a cancel of p from its latest decision only
 *                         (a reading of the protocol that is unsafe; see README.md)
 *   RESUME_WITHOUT_ACTIVE_CHECK  the source handles Cancelled(p) without checking that it is still
 *                         the active cluster of its record (unsafe too; see README.md)
 *   REPLY_TO_DECIDED_SOURCE  the target addresses its answer to a CancelRequest(p) for an already
 *                         decided p to the source of the proposal it decided, not to the
 *                         requester (a namespace can stay stuck in HANDOVER; see README.md)
 *   MAXM  membership changes in a run (add or remove one member; 0: fixed members)  default 0
 *   LATE                  cluster NC-1 is not in the namespace's initial member list (it joins
 *                         late: with MAXM >= 1 it can be added)
 *   FAILBACK              forced runs check P2 at every graceful activation too (a handover
 *                         after a forced failover: the history may have forked)
 *   With MAXM > 0 or FAILBACK, a task carries its branch (its writer's version history) and is
 *   applied with conflict resolution (see "Branches" below); otherwise the original, cheaper
 *   stream model is used and every run without these flags explores the same states as before.
 *   HANDOVER_IGNORES_AWAITING_HISTORY  a graceful handover to a member listed in
 *                         members_awaiting_history is accepted without a verification (the code
 *                         before issue 15 item 19; unsafe, see README.md)
 *   VERIFY_WITHOUT_TARGET_SETTINGS  a clean verification counts although the target's own record
 *                         does not list it yet (what the code does; unsafe, see README.md)
 *   VERIFY_ACCEPTS_IN_FLIGHT  the verification accepts a run one side holds a prefix of (what
 *                         `xdcctl migration cutover` accepts; unsafe for a late member)
 *   VERIFY_NOT_BOUND_TO_SETTINGS  a verification stays valid across later membership changes (the
 *                         request's target_verified_identical is a bare flag; unsafe)
 *   SETTINGS_BY_CONFIG_VERSION_ONLY  settings records are ordered by config_version alone (two
 *                         sides of a split brain changing the members at the same config_version
 *                         keep different lists; unsafe, see README.md)
 *   FAILBACK_KEEPS_OWN_BRANCH  conflict resolution keeps the local branch on a fork, even when the
 *                         incoming one has the higher version (unsafe, see README.md)
 *   ACTIVATE_SUPERSEDED   the target activates a proposal although a newer record superseded its
 *                         source (unsafe, see README.md)
 *   PROBE=n               reachability probe n (see "Probes" below): asserts that a situation
 *                         never happens, so spin must report a violation (guards against a
 *                         vacuous model; scripts/check-models.sh runs them)
 *
 * One process runs every action of every cluster as one d_step (one durable store write, or one
 * message handled). All of a cluster's protocol state is durable; nothing volatile matters, so a
 * crash/restart is a stutter step plus the loss of messages in flight, which the network
 * abstraction below already covers.
 *
 * Network abstraction (sound for safety, and covers any number of losses, duplicates and
 * reorderings, so no fault budget is needed):
 *  - A history stream is the sender's durable outbox (tv/ta). The receiver applies only the
 *    task with the next expected id; any other id (duplicate, old, ahead of a gap) is a no-op.
 *    Whatever a lossy, duplicating, reordering channel with retransmission from the outbox does,
 *    the receiver's state therefore changes only by "apply task nxt from the outbox", which is
 *    the one stream action here (APPLY); loss is a delay, bounded because the sender resends.
 *  - Control messages (namespace records, CancelRequest, Cancelled) are kept in append-only logs
 *    of everything ever sent. Any logged message can be delivered at any later time, any number
 *    of times, in any order, or never: that is loss, duplication, reordering and delay at once.
 *    Every handler is idempotent, so a resend (CancelRequest resend, record re-announcement at
 *    restart, a record sent as a reply) adds nothing that is not already deliverable.
 *  - A delivery is offered only when it would change something (other deliveries are stutter
 *    steps), so a run ends when nothing can change; the end state is then checked (QUIESCENT).
 */

#ifndef NC
#define NC 2
#endif
#ifndef NS
#define NS 2        /* shards; one workflow per shard */
#endif
#define INC 10      /* failover version increment; cluster c owns versions v with v % INC == c+1 */
#ifndef MAXW
#define MAXW 3
#endif
#ifndef MAXH
#define MAXH 2
#endif
#ifndef MAXF
#define MAXF 0
#endif
#ifndef MAXM
#define MAXM 0
#endif
#if MAXM > 0
#define MEMBERS 1   /* member lists, members awaiting history, verification, backfill */
#else
#define MEMBERS 0
#endif
#if MEMBERS || defined(FAILBACK)
#define NDC 1       /* tasks carry their branch; apply is conflict resolution */
#else
#define NDC 0
#endif
#if MAXF == 0
#define GRACEFUL 1  /* graceful handovers and cancels only: the strong claims are checked */
#else
#define GRACEFUL 0
#endif

#define SLEN (MAXW + MAXH)        /* tasks per (source, shard) stream: events + one marker per attempt */
#if MAXW > 0
#define HMAX MAXW                 /* events per workflow history */
#else
#define HMAX 1
#endif
#define RLOG (3 * MAXH + MAXF + MAXM) /* records ever broadcast: start, resume, activation per attempt;
                                       * forced; membership changes */
#define CLOG MAXH                 /* distinct CancelRequest(p, source): one proposal per attempt */
#define KLOG MAXH                 /* distinct Cancelled(p, source) */
#define ALLS ((1 << NS) - 1)
#define ALLC ((1 << NC) - 1)

#define ACTIVE 0
#define HANDOVER 1
#define ACTIVATED 0               /* decision kinds */
#define CANCELLED 1

/* ---- index helpers (Promela has only one-dimensional arrays) ---- */
#define CS(c, s) ((c) * NS + (s))
#define TASK(c, s, i) (CS(c, s) * SLEN + (i))
#define NX(c, src, s) (((c) * NC + (src)) * NS + (s))
#define HI(c, s, pos) (CS(c, s) * HMAX + (pos))
#define VV(k, x, s) (((k) * NC + (x)) * NS + (s))
#define OWNER(v) (((v) % INC) - 1)
#define OWNS(c, v) (((v) % INC) == (c) + 1)
#define PBIT(p) (1 << ((((p) / INC) * NC) + ((p) % INC) - 1)) /* one bit per possible version */

/* ---- durable namespace record per cluster (protocol/handover.*, namespace_registry.*) ---- */
byte ra[NC];      /* active cluster */
byte rv[NC];      /* failover version */
bit rs[NC];       /* ACTIVE / HANDOVER */
byte rq[NC];      /* state sequence, orders records of one version */
byte rp[NC];      /* proposed version */
byte rl[NC];      /* last proposed version */
bit rc[NC];       /* cancel requested */

#if MEMBERS
/* settings part of the record (protocol/federation.*, namespace_record.*): ordered by
 * (config_version, config_failover_version), merged apart from the failover part */
byte rm[NC];      /* member clusters (bitmask) */
byte rw[NC];      /* members_awaiting_history (bitmask) */
byte rcv[NC];     /* config_version */
byte rcf[NC];     /* config_failover_version */
byte nm;          /* membership changes made */
/* the operator's clean verification of a target (xdcctl migration cutover), not yet used */
bit vt[NC];       /* target verified identical to the source */
byte vtc[NC];     /* the source's config_version when it was verified */
#endif

/* ---- durable streams (outboxes): per (source, shard), dense task ids ---- */
byte tv[NC * NS * SLEN];  /* an event's failover version (>= 1); 0: a handover marker */
byte ta[NC * NS * SLEN];  /* event: its position in the workflow; marker: handover attempt index */
byte slen[NC * NS];
#if NDC
byte tb[NC * NS * SLEN * HMAX]; /* an event task's branch: its writer's copy up to the event */
#define TB(k, j) ((k) * HMAX + (j))
#endif

/* marker contents, one row per handover attempt (the same on every shard but the vector) */
byte hsrc[MAXH];          /* source cluster */
byte hsv[MAXH];           /* source's version */
byte hp[MAXH];            /* proposed version */
byte htg[MAXH];           /* target */
byte hvv[MAXH * NC * NS]; /* version vector: source's next task id applied from X on shard s */
byte nh;                  /* attempts started */
#if NDC
/* ghost: the source's copy of each shard when it started the attempt (it writes nothing after) */
byte hsn[MAXH * NS * HMAX];
byte hsl[MAXH * NS];
#endif

/* ---- durable receiver state ---- */
byte nxt[NC * NC * NS];   /* next task id applied, per (receiver, source, shard) */
byte hist[NC * NS * HMAX];/* receiver's copy of each shard's workflow: version of event at pos */
byte hl[NC * NS];         /* its length */

/* ---- durable target-side handover state (replicator/handover_coordinator.*) ---- */
byte pp[NC];              /* pending proposed version (0: none) */
byte psrc[NC];            /* pending source */
byte psv[NC];             /* pending source version */
byte pseen[NC];           /* shards whose marker was applied (bitmask) */
byte pk[NC * NS];         /* attempt whose marker was seen on the shard (gives its version vector) */
byte dec[NC];             /* highest proposal decided (activated or cancelled) */
#ifdef LATEST_DECISION_ONLY
bit dkind[NC];            /* kind of that latest decision */
#endif
int amask[NC];            /* proposals this cluster activated (set of versions) */
#ifdef REPLY_TO_DECIDED_SOURCE
#define PIDX(p) ((((p) / INC) * NC) + ((p) % INC) - 1)  /* PBIT(p) == 1 << PIDX(p) */
byte dsrc[32];            /* the source of the proposal each decided version was decided for */
#endif

/* ---- control-message logs: everything ever sent ---- */
byte lv[RLOG], lq[RLOG], lp[RLOG], ll[RLOG];  /* the active cluster is OWNER(lv) */
bit ls[RLOG];
#if MEMBERS
byte lm[RLOG], lw[RLOG], lcv[RLOG], lcf[RLOG];  /* the settings part */
#endif
byte nlog;
byte cqp[CLOG], cqs[CLOG]; byte ncq;  /* CancelRequest(p) on behalf of source cqs */
byte ckp[KLOG], ckd[KLOG]; byte nck;  /* Cancelled(p) to source ckd */
int cqm[NC];                          /* same sets as masks per source, for membership tests */
int ckm[NC];

/* ---- bounds ---- */
byte nw;                  /* writes acknowledged */
byte nf;                  /* forced failovers */

/* ---- ghosts ---- */
byte ack[NS * HMAX];      /* graceful runs: the acknowledged history of each shard */
byte ackl[NS];
bit g_conflict;           /* an applied event found another version at its position */
int g_act;                /* proposals activated by a target */
int g_res;                /* proposals after whose Cancelled the source resumed ACTIVE */
#if NDC
int wm[NS * HMAX];        /* versions acknowledged at each (shard, position): PBIT masks */
byte g_sw;                /* clusters whose copy switched to a branch of a higher version */
#endif
#if MEMBERS
byte g_skip;              /* clusters that skipped a task as a non-member */
#endif
#if MAXF > 0
byte g_fa;                /* clusters a forced failover moved the namespace away from */
#endif
bit g_late;               /* probe 9: a cluster that skipped tasks was activated by a handover */
bit g_fb;                 /* probe 10: failback onto a cluster whose copy had forked */

/* scratch, meaningful only inside one d_step */
hidden byte h_p, h_v, h_f, h_i, h_x, h_s, h_k, h_c, h_d;
#if NDC
hidden byte hb[HMAX];     /* a branch being applied (a task's, or a backfilled copy) */
hidden byte hbl, h_j, h_l;
#endif

#define W(c) (ra[c] == (c) && rs[c] == ACTIVE && OWNS(c, rv[c]))   /* accepts writes */

/* target c has applied everything the source had applied from third clusters (marker vectors) */
#define VVE(c, x, s) ((x) == (c) || nxt[NX(c, x, s)] >= hvv[VV(pk[CS(c, s)], x, s)])
#if NS == 2
#define VVX(c, x) (VVE(c, x, 0) && VVE(c, x, 1))
#else
#define VVX(c, x) VVE(c, x, 0)
#endif
#if NC == 3
#define VV_OK(c) (VVX(c, 0) && VVX(c, 1) && VVX(c, 2))
#else
#define VV_OK(c) (VVX(c, 0) && VVX(c, 1))
#endif

/* ---- Probes: situations the checked runs must reach (each is asserted never to happen) ---- */
#ifdef PROBE
bit g_superseded;         /* a target decided a proposal CANCELLED because a newer record superseded it */
#define PROBE_AT_END 0
#if PROBE == 1            /* a graceful handover activates its target */
#define PROBE_EXPR (g_act != 0)
#elif PROBE == 2          /* a cancelled handover resumes its source */
#define PROBE_EXPR (g_res != 0)
#elif PROBE == 3          /* cluster 1 became active holding cluster 0's write, and wrote after it */
#define PROBE_EXPR (W(1) && hl[CS(1, 0)] >= 2 && hist[HI(1, 0, 0)] == 1 && hist[HI(1, 0, 1)] == 2)
#elif PROBE == 4          /* a target waits for a third cluster's tasks (version vector blocks it) */
#define PROBE_EXPR (pp[NC - 1] > dec[NC - 1] && pseen[NC - 1] == ALLS && rv[NC - 1] <= psv[NC - 1] && \
                    !VV_OK(NC - 1))
#elif PROBE == 5          /* a newer record supersedes a proposal at its target */
#define PROBE_EXPR (g_superseded)
#elif PROBE == 6          /* a forced failover forks a workflow (split brain, detected as a conflict) */
#define PROBE_EXPR (g_conflict)
#elif PROBE == 8          /* NC=3, NS=2, MAXF=1: the last cluster could activate a pending proposal
                           * whose two shard markers come from two different sources (same p) */
#define PROBE_EXPR (pseen[NC - 1] == ALLS && pp[NC - 1] > dec[NC - 1] && \
                    hsrc[pk[CS(NC - 1, 0)]] != hsrc[pk[CS(NC - 1, NS - 1)]] && \
                    rv[NC - 1] <= psv[NC - 1] && VV_OK(NC - 1))
#elif PROBE == 9          /* MAXM: a cluster that skipped tasks as a non-member (a late or re-added
                           * member) is activated by a graceful handover (after a verification) */
#define PROBE_EXPR (g_late)
#elif PROBE == 10         /* FAILBACK: a graceful handover activates a cluster a forced failover
                           * had moved the namespace away from, after its copy of a workflow
                           * switched from its own fork to the higher-version branch */
#define PROBE_EXPR (g_fb)
#elif PROBE == 7          /* a run ends after a handover was activated and every write was made */
#undef PROBE_AT_END
#define PROBE_AT_END 1
#define PROBE_EXPR (g_act != 0 && nw == MAXW)
#endif
#else
#define PROBE_AT_END 0
#endif
#if NC == 3
#define NWRITABLE (W(0) + W(1) + W(2))
#define P1_PER_VERSION (!(W(0) && W(1) && rv[0] == rv[1]) && !(W(0) && W(2) && rv[0] == rv[2]) && \
                        !(W(1) && W(2) && rv[1] == rv[2]))
#else
#define NWRITABLE (W(0) + W(1))
#define P1_PER_VERSION (!(W(0) && W(1) && rv[0] == rv[1]))
#endif

/* global invariants, asserted after every step */
inline check_invariants() {
  assert(P1_PER_VERSION);                    /* P1: one writable cluster per failover version */
  assert(!GRACEFUL || NWRITABLE <= 1);       /* P1 (graceful runs): one writable cluster */
  assert(!GRACEFUL || !g_conflict);          /* P2: no fork */
  assert((g_act & g_res) == 0);              /* P3: never both activated at p and resumed after p */
#if defined(PROBE_EXPR) && !PROBE_AT_END
  assert(!(PROBE_EXPR));                     /* reachability probe: spin must reach it */
#endif
}

inline next_owned(c, floor, out) {          /* smallest version owned by c that is > floor */
  out = floor - (floor % INC) + c + 1;
  if
  :: out <= floor -> out = out + INC
  :: else -> skip
  fi;
  assert((out / INC) * NC + NC <= 31)        /* PBIT(out) fits in an int */
}

inline log_record(c) {                      /* broadcast c's record (append to the sent log) */
  assert(ra[c] == c && OWNS(c, rv[c]));      /* only a version's owner writes records at it */
  assert(nlog < RLOG);  /* bound */
  lv[nlog] = rv[c]; ls[nlog] = rs[c]; lq[nlog] = rq[c];
  lp[nlog] = rp[c]; ll[nlog] = rl[c];
#if MEMBERS
  lm[nlog] = rm[c]; lw[nlog] = rw[c]; lcv[nlog] = rcv[c]; lcf[nlog] = rcf[c];
#endif
  nlog++
}

inline append_task(c, s, a, v) {
  h_i = slen[CS(c, s)];
  assert(h_i < SLEN);  /* bound */
  ta[TASK(c, s, h_i)] = a; tv[TASK(c, s, h_i)] = v;
  slen[CS(c, s)]++
}

#if NDC
/* Branches (protocol/conflict_resolver.*, rules 1-4 of the design). An event is identified by its
 * (position, version): one owner writes each version, on one copy. A task carries its writer's
 * branch up to the event (the version-history items). Applying a branch hb to c's copy of s:
 * a prefix of the copy is a duplicate; an extension of the copy is appended (events the copy
 * lacks before the task's are the parked task's resend, applied at once); otherwise it forks, and
 * the copy (the current branch) switches to it only if it is greater in the order of
 * protocol/version_history.cc CompareBranches: the last item's (version, event id), then the
 * items in turn. Only the current branch is kept: a branch that loses is never current again
 * unless a later task extends it, and every task carries its whole branch. */
#define LASTV(c, s) hist[HI(c, s, hl[CS(c, s)] - 1)]
/* At a fork at position h_l (both branches longer than h_l, equal before it), with equal last
 * items: the first item that differs is the one holding position h_l - 1 if one branch goes on
 * with that version at h_l (the longer item wins), else the one starting at h_l (higher version
 * wins). */
#define FORK_ITEM_WINS(c, s) ((h_l > 0 && hb[h_l] == hist[HI(c, s, h_l - 1)]) || \
        ((h_l == 0 || hist[HI(c, s, h_l)] != hist[HI(c, s, h_l - 1)]) && hb[h_l] > hist[HI(c, s, h_l)]))
#define INCOMING_WINS(c, s) (hb[hbl - 1] > LASTV(c, s) || (hb[hbl - 1] == LASTV(c, s) && \
        (hbl > hl[CS(c, s)] || (hbl == hl[CS(c, s)] && FORK_ITEM_WINS(c, s)))))
inline apply_branch(c, s) {
  h_l = 0;                                           /* longest common prefix */
  do
  :: h_l < hbl && h_l < hl[CS(c, s)] && hb[h_l] == hist[HI(c, s, h_l)] -> h_l++
  :: else -> break
  od;
  if
  :: h_l == hbl -> skip                              /* duplicate */
  :: h_l < hbl && h_l == hl[CS(c, s)] ->             /* extends the copy */
     for (h_j : h_l .. hbl - 1) { hist[HI(c, s, h_j)] = hb[h_j] };
     hl[CS(c, s)] = hbl
  :: else ->                                         /* a fork */
     g_conflict = 1;
#ifdef FAILBACK_KEEPS_OWN_BRANCH
     skip                                            /* BUG: the local branch stays current */
#else
     if
     :: INCOMING_WINS(c, s) ->                      /* switch to the greater branch */
        for (h_j : h_l .. hbl - 1) { hist[HI(c, s, h_j)] = hb[h_j] };
        for (h_j : hbl .. HMAX - 1) { hist[HI(c, s, h_j)] = 0 };
        hl[CS(c, s)] = hbl;
        g_sw = g_sw | (1 << c)
     :: else -> skip
     fi
#endif
  fi
}

inline branch_of_task(k) {                   /* hb := the branch task k carries */
  hbl = ta[k] + 1;
  for (h_j : 0 .. HMAX - 1) { hb[h_j] = tb[TB(k, h_j)] }
}

inline branch_of_copy(a, s) {                /* hb := a's copy of s (a backfill) */
  hbl = hl[CS(a, s)];
  for (h_j : 0 .. HMAX - 1) { hb[h_j] = hist[HI(a, s, h_j)] }
}
#endif

inline decide(c, p, kind, src) {
  /* P3: a proposal is decided at most once: only by its target, and decisions only grow */
  assert(OWNER(p) == c && p > dec[c]);  /* P3: decided once, by the target */
  dec[c] = p;
#ifdef REPLY_TO_DECIDED_SOURCE
  dsrc[PIDX(p)] = src;
#endif
#ifdef LATEST_DECISION_ONLY
  dkind[c] = kind
#endif
}

inline add_creq(p, src) {
  if
  :: (cqm[src] & PBIT(p)) == 0 ->
     assert(ncq < CLOG);  /* bound */
     cqp[ncq] = p; cqs[ncq] = src; ncq++;
     cqm[src] = cqm[src] | PBIT(p)
  :: else -> skip
  fi
}

inline add_cancelled(p, dst) {
  if
  :: (ckm[dst] & PBIT(p)) == 0 ->
     assert(nck < KLOG);  /* bound */
     ckp[nck] = p; ckd[nck] = dst; nck++;
     ckm[dst] = ckm[dst] | PBIT(p)
  :: else -> skip
  fi
}

/* 1. Write (replicator/write_service.cc): gate and append in one step, under the shard lock. */
#define CAN_WRITE(c) (nw < MAXW && W(c))
inline write(c, s) {
  h_x = hl[CS(c, s)];
  printf("STEP write: cluster %d shard %d event %d at version %d (acknowledged)\n", c, s, h_x, rv[c]);
  assert(h_x < HMAX);  /* bound */
  hist[HI(c, s, h_x)] = rv[c];
  hl[CS(c, s)]++;
  append_task(c, s, h_x, rv[c]);
#if NDC
  for (h_j : 0 .. h_x) { tb[TB(TASK(c, s, h_i), h_j)] = hist[HI(c, s, h_j)] };
  wm[s * HMAX + h_x] = wm[s * HMAX + h_x] | PBIT(rv[c]);
#endif
  nw++;
#if GRACEFUL
  assert(h_x == ackl[s]);                    /* P2: the writer holds every acknowledged write */
  ack[s * HMAX + h_x] = rv[c];
  ackl[s]++;
#endif
  check_invariants()
}

/* 2./4. Stream replication: apply the next task of (src, s) at c. An event ahead of the
 * receiver's copy of the workflow waits (the real applier parks it and asks for a resend). */
#define NEXT_TASK(c, src, s) TASK(src, s, nxt[NX(c, src, s)])
#if NDC
#define CAN_APPLY(c, src, s) (nxt[NX(c, src, s)] < slen[CS(src, s)])
#else
#define CAN_APPLY(c, src, s) (nxt[NX(c, src, s)] < slen[CS(src, s)] && \
        (tv[NEXT_TASK(c, src, s)] == 0 || ta[NEXT_TASK(c, src, s)] <= hl[CS(c, s)]))
#endif
#if MEMBERS
#define MEMBER_HERE(c) ((rm[c] & (1 << (c))) != 0)  /* c's own record lists c as a member */
#define MEMBER_AND(c) && MEMBER_HERE(c)
#else
#define MEMBER_AND(c)
#endif

inline marker_apply(c, s, k) {              /* replicator/handover_coordinator.*: collect markers */
  if
  :: htg[k] != c -> skip
  :: else ->
     h_p = hp[k];
     if
     :: h_p <= dec[c] -> skip                /* old or decided proposal */
     :: h_p > dec[c] && h_p > pp[c] ->       /* a new pending proposal */
        pp[c] = h_p; psrc[c] = hsrc[k]; psv[c] = hsv[k]; pseen[c] = (1 << s);
        for (h_s : 0 .. NS - 1) { pk[CS(c, h_s)] = 0 };
        pk[CS(c, s)] = k
     :: h_p > dec[c] && h_p == pp[c] ->
        pseen[c] = pseen[c] | (1 << s);
        pk[CS(c, s)] = k
     :: else -> skip                         /* older than the pending one */
     fi
  fi
}

inline apply(c, src, s) {
  h_k = NEXT_TASK(c, src, s);
  printf("STEP apply: cluster %d applies task %d of (source %d, shard %d)\n", c, nxt[NX(c, src, s)], src, s);
  if
#if MEMBERS
  :: tv[h_k] != 0 && !MEMBER_HERE(c) ->    /* replicator/peer_applier.cc: skipped whole, as */
     g_skip = g_skip | (1 << c);           /* received, by a cluster its own record does not list */
     printf("STEP   skipped: %d is not a member in its record\n", c)
#endif
#if NDC
  :: tv[h_k] != 0 MEMBER_AND(c) ->
     branch_of_task(h_k);
     apply_branch(c, s)
#else
  :: tv[h_k] != 0 ->
     h_x = ta[h_k]; h_v = tv[h_k];
     if
     :: h_x == hl[CS(c, s)] -> hist[HI(c, s, h_x)] = h_v; hl[CS(c, s)]++
     :: else ->
        if
        :: hist[HI(c, s, h_x)] != h_v -> g_conflict = 1   /* a fork */
        :: else -> skip
        fi
     fi
#endif
  :: else -> marker_apply(c, s, ta[h_k])   /* markers are handled whatever the membership */
  fi;
  nxt[NX(c, src, s)]++;
  check_invariants()
}

/* 3. Graceful handover start at a (operator): one atomic store write of the HANDOVER record and
 * a marker on every shard (store/), so no write is acknowledged after a marker. */
#if MEMBERS
/* protocol/federation.cc CheckTargetHoldsHistory: a member still awaiting its history is a
 * target only with a verification (target_verified_identical), which the handover's record
 * write then clears (HistoryVerified, config_version + 1) */
#ifdef VERIFY_NOT_BOUND_TO_SETTINGS
#define VERIFIED(a, b) (vt[b])
#else
#define VERIFIED(a, b) (vt[b] && vtc[b] == rcv[a])
#endif
#ifdef HANDOVER_IGNORES_AWAITING_HISTORY
#define HOLDS_HISTORY(a, b) 1
#else
#define HOLDS_HISTORY(a, b) ((rw[a] & (1 << (b))) == 0 || VERIFIED(a, b))
#endif
#define CAN_START(a, b) (nh < MAXH && W(a) && (rm[a] & (1 << (b))) != 0 && HOLDS_HISTORY(a, b))
#else
#define CAN_START(a, b) (nh < MAXH && W(a))
#endif
inline start(a, b) {
  h_f = rv[a];
  if :: rl[a] > h_f -> h_f = rl[a] :: else -> skip fi;
  next_owned(b, h_f, h_p);
  printf("STEP handover start: cluster %d -> %d, source version %d, proposed %d\n", a, b, rv[a], h_p);
  hsrc[nh] = a; hsv[nh] = rv[a]; hp[nh] = h_p; htg[nh] = b;
  for (h_x : 0 .. NC - 1) {
    for (h_s : 0 .. NS - 1) {
      if
      :: h_x == a -> hvv[VV(nh, h_x, h_s)] = 0
      :: else -> hvv[VV(nh, h_x, h_s)] = nxt[NX(a, h_x, h_s)]
      fi
    }
  };
  for (h_s : 0 .. NS - 1) { append_task(a, h_s, nh, 0) };
#if NDC
  for (h_s : 0 .. NS - 1) {
    hsl[nh * NS + h_s] = hl[CS(a, h_s)];
    for (h_j : 0 .. HMAX - 1) { hsn[(nh * NS + h_s) * HMAX + h_j] = hist[HI(a, h_s, h_j)] }
  };
#endif
#if MEMBERS && !defined(HANDOVER_IGNORES_AWAITING_HISTORY)
  if
  :: (rw[a] & (1 << b)) != 0 ->
     assert(VERIFIED(a, b));
     printf("STEP   verified: %d no longer awaits its history\n", b);
     vt[b] = 0; vtc[b] = 0;
     rw[a] = rw[a] & ~(1 << b); rcv[a]++; rcf[a] = rv[a]
  :: else -> skip
  fi;
#endif
  rs[a] = HANDOVER; rp[a] = h_p; rl[a] = h_p; rq[a]++; rc[a] = 0;
  nh++;
  log_record(a);
  check_invariants()
}

/* 5. Activation at c (protocol/handover.*: activation condition): every shard's marker seen,
 * everything the source had applied from third clusters applied here, not decided, and no newer
 * record superseded the source; if one did, the proposal is decided CANCELLED instead. */
#define CAN_DECIDE(c) (pp[c] > dec[c] && pseen[c] == ALLS && (rv[c] > psv[c] || VV_OK(c)))
#ifdef ACTIVATE_SUPERSEDED
#define SUPERSEDED(c) 0         /* BUG: a newer record does not stop the activation */
#else
#define SUPERSEDED(c) (rv[c] > psv[c])
#endif

inline activate(c) {
  h_p = pp[c];
  printf("STEP decide at target %d: proposal %d (record version %d, source version %d)\n", c, h_p, rv[c], psv[c]);
  if
  :: SUPERSEDED(c) -> decide(c, h_p, CANCELLED, psrc[c]);    /* superseded */
#ifdef PROBE
     g_superseded = 1;
#endif
     printf("STEP   -> CANCELLED (superseded)\n")
  :: else ->
     decide(c, h_p, ACTIVATED, psrc[c]);
     printf("STEP   -> ACTIVATED: cluster %d active at version %d\n", c, h_p);
     amask[c] = amask[c] | PBIT(h_p);
     g_act = g_act | PBIT(h_p);
#if NDC
     /* P2 (every run, also after a forced failover): the target's copy of every shard extends
      * the source's copy when it started (it wrote nothing after), and holds every write
      * acknowledged at the source's version */
     for (h_s : 0 .. NS - 1) {
       h_k = pk[CS(c, h_s)];
       assert(hl[CS(c, h_s)] >= hsl[h_k * NS + h_s]);  /* P2: the target holds the source's copy */
       for (h_x : 0 .. HMAX - 1) {
         assert(h_x >= hsl[h_k * NS + h_s] || hist[HI(c, h_s, h_x)] == hsn[(h_k * NS + h_s) * HMAX + h_x]);  /* P2: the target holds the source's copy */
         assert((wm[h_s * HMAX + h_x] & PBIT(psv[c])) == 0 || (h_x < hl[CS(c, h_s)] && hist[HI(c, h_s, h_x)] == psv[c]))  /* P2: the target holds every write acknowledged at the source's version */
       }
     };
#if MAXF > 0
     if :: (g_fa & g_sw & (1 << c)) != 0 -> g_fb = 1 :: else -> skip fi;
#endif
#endif
#if GRACEFUL
     for (h_s : 0 .. NS - 1) {                       /* P2: no acknowledged write lost */
       assert(hl[CS(c, h_s)] >= ackl[h_s]);  /* P2: no acknowledged write lost at activation */
       for (h_x : 0 .. HMAX - 1) {
         assert(h_x >= ackl[h_s] || hist[HI(c, h_s, h_x)] == ack[h_s * HMAX + h_x])  /* P2: no acknowledged write lost at activation */
       }
     };
#endif
#if MEMBERS
     if :: (g_skip & (1 << c)) != 0 -> g_late = 1 :: else -> skip fi;
#endif
     ra[c] = c; rv[c] = h_p; rs[c] = ACTIVE; rq[c] = 0; rp[c] = 0; rc[c] = 0;
     if :: rl[c] < h_p -> rl[c] = h_p :: else -> skip fi;
     log_record(c)
  fi;
  check_invariants()
}

/* 6. Cancel at the source a (operator, or a's deadline): cancel_requested is stored and
 * CancelRequest(p) sent; resends and an operator's cancel sent to the target directly are the
 * same logged message. */
#define CAN_CANCEL(a) (ra[a] == (a) && rs[a] == HANDOVER && !rc[a])
inline cancel(a) {
  printf("STEP cancel at source %d: CancelRequest(%d) sent\n", a, rp[a]);
  rc[a] = 1;
  add_creq(rp[a], a);
#ifdef BROKEN
  /* BUG: the source gives up on its own timeout and resumes without the target's decision. */
  printf("STEP BUG: source %d resumes ACTIVE at version %d without a decision\n", a, rv[a]);
  g_res = g_res | PBIT(rp[a]);
  rs[a] = ACTIVE; rq[a]++; rp[a] = 0; rc[a] = 0;
  log_record(a);
#endif
  check_invariants()
}

/* 7. CancelRequest(p) from source src at the target b = OWNER(p). Its reply: Cancelled(p) for a
 * proposal it did not activate; its record (already deliverable from the log) for one it did.
 * The reply goes to the requester src, also when p was decided before for another source (a
 * forced failover let a cluster that never heard of that proposal propose p again): that source
 * is the one waiting in HANDOVER (protocol/handover.cc DecideCancel addresses it the same way). */
#ifdef REPLY_TO_DECIDED_SOURCE
#define REPLY_TO(i) (dsrc[PIDX(cqp[i])])                  /* to the decided proposal's source */
#else
#define REPLY_TO(i) (cqs[i])                               /* to the requester */
#endif
#ifdef LATEST_DECISION_ONLY
#define REPLY_CANCELLED(b, p) (dkind[b] == CANCELLED)        /* from the latest decision only */
#else
#define REPLY_CANCELLED(b, p) ((amask[b] & PBIT(p)) == 0)    /* from the decision for p */
#endif
#define CQ_B(i) OWNER(cqp[i])
#define CAN_CREQ(i) (i < ncq && (dec[CQ_B(i)] < cqp[i] || \
        (REPLY_CANCELLED(CQ_B(i), cqp[i]) && (ckm[REPLY_TO(i)] & PBIT(cqp[i])) == 0)))
inline deliver_creq(i) {
  h_p = cqp[i]; h_c = OWNER(h_p);
  printf("STEP CancelRequest(%d) from %d delivered at %d (decided %d)\n", h_p, cqs[i], h_c, dec[h_c]);
  if
  :: dec[h_c] < h_p -> decide(h_c, h_p, CANCELLED, cqs[i])
  :: else -> skip
  fi;
  h_d = REPLY_TO(i);
  if
  :: REPLY_CANCELLED(h_c, h_p) -> add_cancelled(h_p, h_d)
  :: else -> skip
  fi;
  check_invariants()
}

/* 8. Cancelled(p) at the source: resume ACTIVE at the same version if still handing over p, and
 * still the active cluster of its record: after a forced failover a stale cluster can propose the
 * same p, and the source may have adopted that cluster's HANDOVER record (see README.md). */
#ifdef RESUME_WITHOUT_ACTIVE_CHECK
#define CAN_CANCELLED(j) (j < nck && rs[ckd[j]] == HANDOVER && rp[ckd[j]] == ckp[j])
#else
#define CAN_CANCELLED(j) (j < nck && ra[ckd[j]] == ckd[j] && rs[ckd[j]] == HANDOVER && rp[ckd[j]] == ckp[j])
#endif
inline deliver_cancelled(j) {
  h_c = ckd[j]; h_p = ckp[j];
  printf("STEP Cancelled(%d) delivered at %d: resumes ACTIVE at version %d\n", h_p, h_c, rv[h_c]);
  g_res = g_res | PBIT(h_p);
  rs[h_c] = ACTIVE; rq[h_c]++; rp[h_c] = 0; rc[h_c] = 0;
  log_record(h_c);
  check_invariants()
}

/* 9. A record with a higher (version, seq) is adopted whole (replicator/namespace_registry.*). */
#define FAILOVER_NEWER(i, r) (lv[i] > rv[r] || (lv[i] == rv[r] && lq[i] > rq[r]))
#if MEMBERS
/* protocol/namespace_record.cc: the settings part merges apart, by SettingsNewer */
#ifdef SETTINGS_BY_CONFIG_VERSION_ONLY
#define SETTINGS_NEWER(i, r) (lcv[i] > rcv[r])   /* BUG: equal config_versions never merge */
#else
#define SETTINGS_NEWER(i, r) (lcv[i] > rcv[r] || (lcv[i] == rcv[r] && lcf[i] > rcf[r]))
#endif
#define CAN_RECORD(i, r) (i < nlog && (FAILOVER_NEWER(i, r) || SETTINGS_NEWER(i, r)))
#else
#define CAN_RECORD(i, r) (i < nlog && FAILOVER_NEWER(i, r))
#endif
inline deliver_record(i, r) {
  printf("STEP record (active %d, version %d, seq %d, state %d) adopted by %d\n", OWNER(lv[i]), lv[i], lq[i], ls[i], r);
#if MEMBERS
  if
  :: SETTINGS_NEWER(i, r) ->
     printf("STEP   settings (members %d, awaiting %d, config version %d)\n", lm[i], lw[i], lcv[i]);
     rm[r] = lm[i]; rw[r] = lw[i]; rcv[r] = lcv[i]; rcf[r] = lcf[i]
  :: else -> skip
  fi;
  if
  :: FAILOVER_NEWER(i, r) ->
#endif
  ra[r] = OWNER(lv[i]); rv[r] = lv[i]; rs[r] = ls[i]; rq[r] = lq[i];
  rp[r] = lp[i]; rl[r] = ll[i]; rc[r] = 0;   /* cancel_requested is never set in a broadcast */
#if MEMBERS
  :: else -> skip
  fi;
#endif
  check_invariants()
}

/* 10. Forced failover to c (operator; replicator/namespace_registry.*). */
#if MEMBERS
#define CAN_FORCE(c) (nf < MAXF && !W(c) && MEMBER_HERE(c))
#else
#define CAN_FORCE(c) (nf < MAXF && !W(c))
#endif
inline force(c) {
  h_f = rv[c];
  if :: rl[c] > h_f -> h_f = rl[c] :: else -> skip fi;
  if :: dec[c] > h_f -> h_f = dec[c] :: else -> skip fi;
  next_owned(c, h_f, h_v);                           /* floor taken before the marking below */
  printf("STEP forced failover to %d at version %d\n", c, h_v);
  if
  :: pp[c] > dec[c] -> decide(c, pp[c], CANCELLED, psrc[c])   /* pending proposal superseded */
  :: else -> skip
  fi;
#if MAXF > 0
  if :: ra[c] != c -> g_fa = g_fa | (1 << ra[c]) :: else -> skip fi;
#endif
  ra[c] = c; rv[c] = h_v; rs[c] = ACTIVE; rq[c] = 0; rp[c] = 0; rc[c] = 0;
  nf++;
  log_record(c);
  check_invariants()
}

#if MEMBERS
/* 11. Membership change at a (protocol/federation.cc ChangeNamespaceMembers): only the active
 * cluster (its own record says so) changes the members, config_version + 1, stamped with its
 * failover version. An added member is listed as awaiting its history (it skipped the
 * namespace's tasks until its record listed it; a re-added member too). The active cluster and
 * a handover's target cannot be removed. */
#define CAN_ADDM(a, m) (nm < MAXM && ra[a] == (a) && (rm[a] & (1 << (m))) == 0)
inline add_member(a, m) {
  printf("STEP membership at %d: add %d (config version %d)\n", a, m, rcv[a] + 1);
  rm[a] = rm[a] | (1 << m); rw[a] = rw[a] | (1 << m);
  rcv[a]++; rcf[a] = rv[a]; nm++;
  log_record(a);
  check_invariants()
}
#define CAN_REMM(a, m) (nm < MAXM && ra[a] == (a) && (m) != (a) && (rm[a] & (1 << (m))) != 0 && \
        !(rs[a] == HANDOVER && OWNER(rp[a]) == (m)))
inline remove_member(a, m) {
  printf("STEP membership at %d: remove %d (config version %d)\n", a, m, rcv[a] + 1);
  rm[a] = rm[a] & ~(1 << m); rw[a] = rw[a] & ~(1 << m);
  rcv[a]++; rcf[a] = rv[a]; nm++;
  log_record(a);
  check_invariants()
}

/* 12. Backfill of a member awaiting its history, from the active cluster a
 * (replicator/backfill_publisher.*): a's copy of shard s, applied at c as a branch, or skipped
 * whole if c's own record does not list c yet (the same applier path as the stream). A backfill
 * read earlier and delivered later delivers a prefix of a's branch: an earlier step of this one. */
#define PFX_POS(a, b, s, x) ((x) >= hl[CS(a, s)] || (x) >= hl[CS(b, s)] || \
        hist[HI(a, s, x)] == hist[HI(b, s, x)])
#if HMAX == 1
#define PFX(a, b, s) PFX_POS(a, b, s, 0)
#elif HMAX == 2
#define PFX(a, b, s) (PFX_POS(a, b, s, 0) && PFX_POS(a, b, s, 1))
#elif HMAX == 3
#define PFX(a, b, s) (PFX_POS(a, b, s, 0) && PFX_POS(a, b, s, 1) && PFX_POS(a, b, s, 2))
#else
#define PFX(a, b, s) (PFX_POS(a, b, s, 0) && PFX_POS(a, b, s, 1) && PFX_POS(a, b, s, 2) && \
        PFX_POS(a, b, s, 3))
#endif
#define CAN_BACKFILL(a, c, s) (ra[a] == (a) && (c) != (a) && (rw[a] & (1 << (c))) != 0 && \
        MEMBER_HERE(c) && (hl[CS(a, s)] > hl[CS(c, s)] || !PFX(a, c, s)))
inline backfill(a, c, s) {
  printf("STEP backfill: %d's copy of shard %d applied at %d\n", a, s, c);
  branch_of_copy(a, s);
  apply_branch(c, s);
  check_invariants()
}

/* 13. The operator's verification (xdcctl migration cutover) of a member b awaiting its
 * history against the active cluster a, before it asks a to hand over with
 * target_verified_identical: the copies of every shard are identical. The verification is
 * remembered with a's config_version; the handover's start (step 3) uses it. The model's rule
 * also asks that b's own record lists b at a's config_version: until then b skips a's tasks,
 * including those written after the verification (VERIFY_WITHOUT_TARGET_SETTINGS drops this, as
 * the code does; see README.md). */
#ifdef VERIFY_ACCEPTS_IN_FLIGHT
/* both hold the run, and one side's current branch extends the other's: "in flight" */
#define SAME_SHARD(a, b, s) ((hl[CS(a, s)] == 0) == (hl[CS(b, s)] == 0) && PFX(a, b, s))
#else
#define SAME_SHARD(a, b, s) (hl[CS(a, s)] == hl[CS(b, s)] && PFX(a, b, s))
#endif
#if NS == 2
#define SAME_COPIES(a, b) (SAME_SHARD(a, b, 0) && SAME_SHARD(a, b, 1))
#else
#define SAME_COPIES(a, b) SAME_SHARD(a, b, 0)
#endif
#ifdef VERIFY_WITHOUT_TARGET_SETTINGS
#define TARGET_KNOWS(a, b) 1
#else
#define TARGET_KNOWS(a, b) (MEMBER_HERE(b) && rcv[b] >= rcv[a])
#endif
#define CAN_VERIFY(a, b) (ra[a] == (a) && rs[a] == ACTIVE && (rw[a] & (1 << (b))) != 0 && \
        !(vt[b] && vtc[b] == rcv[a]) && SAME_COPIES(a, b) && TARGET_KNOWS(a, b))
inline verify(a, b) {
  printf("STEP verification: %d identical to %d (config version %d)\n", b, a, rcv[a]);
  vt[b] = 1; vtc[b] = rcv[a];
  check_invariants()
}
#endif

/* ---- the end of a run: nothing can change any more ---- */
inline check_quiescent() {
  for (h_c : 0 .. NC - 1) {
    /* every stream fully applied (no event waits forever for an earlier one) */
    for (h_d : 0 .. NC - 1) {
      for (h_s : 0 .. NS - 1) {
        assert(h_c == h_d || nxt[NX(h_c, h_d, h_s)] == slen[CS(h_d, h_s)])  /* end: every stream applied */
      }
    };
    /* every cluster holds the same record */
    assert(ra[h_c] == ra[0] && rv[h_c] == rv[0] && rq[h_c] == rq[0] && rs[h_c] == rs[0]);  /* end: every record equal */
#if MEMBERS
    assert(rm[h_c] == rm[0] && rw[h_c] == rw[0] && rcv[h_c] == rcv[0] && rcf[h_c] == rcf[0]);  /* end: every record's settings equal */
#endif
#if GRACEFUL
    /* every cluster holds exactly the acknowledged history (with members: every member that
     * does not await its history; the others skipped tasks) */
    for (h_s : 0 .. NS - 1) {
#if MEMBERS
      if
      :: (rm[0] & (1 << h_c)) == 0 || (rw[0] & (1 << h_c)) != 0 -> break
      :: else -> skip
      fi;
#endif
      assert(hl[CS(h_c, h_s)] == ackl[h_s]);  /* end: copy = acknowledged history */
      for (h_x : 0 .. HMAX - 1) {
        assert(h_x >= ackl[h_s] || hist[HI(h_c, h_s, h_x)] == ack[h_s * HMAX + h_x])  /* end: copy = acknowledged history */
      }
    };
#endif
  };
  /* every proposal was decided */
  for (h_k : 0 .. MAXH - 1) { assert(h_k >= nh || dec[htg[h_k]] >= hp[h_k]) };  /* end: every proposal decided */
  /* the namespace is not stuck: exactly one cluster accepts writes */
  assert(NWRITABLE == 1);  /* end: one writable cluster */
#if defined(PROBE_EXPR) && PROBE_AT_END
  assert(!(PROBE_EXPR));  /* probe reached */
#endif
}

#define WRITE1(c, s)   :: d_step { CAN_WRITE(c) -> write(c, s) }
#define APPLY1(c, x, s) :: d_step { CAN_APPLY(c, x, s) -> apply(c, x, s) }
#if NS == 2
#define WRITE(c)       WRITE1(c, 0) WRITE1(c, 1)
#define APPLY(c, x)    APPLY1(c, x, 0) APPLY1(c, x, 1)
#else
#define WRITE(c)       WRITE1(c, 0)
#define APPLY(c, x)    APPLY1(c, x, 0)
#endif
#define START(a, b)    :: d_step { CAN_START(a, b) -> start(a, b) }
#define ACT(c)         :: d_step { CAN_DECIDE(c) -> activate(c) }
#define CANCEL(a)      :: d_step { CAN_CANCEL(a) -> cancel(a) }
#define FORCE(c)       :: d_step { CAN_FORCE(c) -> force(c) }
#define ADDM(a, m)     :: d_step { CAN_ADDM(a, m) -> add_member(a, m) }
#define REMM(a, m)     :: d_step { CAN_REMM(a, m) -> remove_member(a, m) }
#define VERIFY(a, b)   :: d_step { CAN_VERIFY(a, b) -> verify(a, b) }
#define BACKFILL1(a, c, s) :: d_step { CAN_BACKFILL(a, c, s) -> backfill(a, c, s) }
#if NS == 2
#define BACKFILL(a, c) BACKFILL1(a, c, 0) BACKFILL1(a, c, 1)
#else
#define BACKFILL(a, c) BACKFILL1(a, c, 0)
#endif
#define CREQ(i)        :: d_step { CAN_CREQ(i) -> deliver_creq(i) }
#define CANC(i)        :: d_step { CAN_CANCELLED(i) -> deliver_cancelled(i) }
#if NC == 3
#define REC(i)         :: d_step { CAN_RECORD(i, 0) -> deliver_record(i, 0) } \
                       :: d_step { CAN_RECORD(i, 1) -> deliver_record(i, 1) } \
                       :: d_step { CAN_RECORD(i, 2) -> deliver_record(i, 2) }
#else
#define REC(i)         :: d_step { CAN_RECORD(i, 0) -> deliver_record(i, 0) } \
                       :: d_step { CAN_RECORD(i, 1) -> deliver_record(i, 1) }
#endif

#if RLOG > 12 || CLOG > 3 || KLOG > 3
#error "bounds too large for the unrolled actions in init: add REC/CREQ/CANC lines"
#endif

init {
  byte c;
  d_step {
    for (c : 0 .. NC - 1) {
      ra[c] = 0; rv[c] = 1; rs[c] = ACTIVE; rq[c] = 0; rl[c] = 1;
#if MEMBERS
#ifdef LATE
      rm[c] = ALLC & ~(1 << (NC - 1));     /* cluster NC-1 joins the namespace late */
#else
      rm[c] = ALLC;
#endif
#endif
    };
    c = 0
  };
  /* Every action of every cluster, one d_step each. The order only steers which counterexample
   * a depth-first search reports first (protocol steps before writes gives short ones). */
  do
  START(0, 1) START(1, 0)
#if NC == 3
  START(0, 2) START(1, 2) START(2, 0) START(2, 1)
#endif
  APPLY(0, 1) APPLY(1, 0)
#if NC == 3
  APPLY(0, 2) APPLY(1, 2) APPLY(2, 0) APPLY(2, 1)
#endif
  CANCEL(0) CANCEL(1)
#if NC == 3
  CANCEL(2)
#endif
  ACT(0) ACT(1)
#if NC == 3
  ACT(2)
#endif
  CREQ(0)
#if CLOG > 1
  CREQ(1)
#endif
#if CLOG > 2
  CREQ(2)
#endif
  CANC(0)
#if KLOG > 1
  CANC(1)
#endif
#if KLOG > 2
  CANC(2)
#endif
  REC(0) REC(1) REC(2) REC(3) REC(4) REC(5)
#if RLOG > 6
  REC(6)
#endif
#if RLOG > 7
  REC(7)
#endif
#if RLOG > 8
  REC(8)
#endif
#if RLOG > 9
  REC(9)
#endif
#if RLOG > 10
  REC(10)
#endif
#if RLOG > 11
  REC(11)
#endif
  FORCE(0) FORCE(1)
#if NC == 3
  FORCE(2)
#endif
#if MEMBERS
  ADDM(0, 1) ADDM(1, 0) REMM(0, 1) REMM(1, 0)
  VERIFY(0, 1) VERIFY(1, 0) BACKFILL(0, 1) BACKFILL(1, 0)
#if NC == 3
  ADDM(0, 2) ADDM(1, 2) ADDM(2, 0) ADDM(2, 1) REMM(0, 2) REMM(1, 2) REMM(2, 0) REMM(2, 1)
  VERIFY(0, 2) VERIFY(1, 2) VERIFY(2, 0) VERIFY(2, 1)
  BACKFILL(0, 2) BACKFILL(1, 2) BACKFILL(2, 0) BACKFILL(2, 1)
#endif
#endif
  WRITE(0) WRITE(1)
#if NC == 3
  WRITE(2)
#endif
  :: timeout -> d_step { check_quiescent() }; break
  od
}
