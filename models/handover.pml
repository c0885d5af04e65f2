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
#define RLOG (3 * MAXH + MAXF)    /* records ever broadcast: start, resume, activation per attempt; forced */
#define CLOG MAXH                 /* distinct CancelRequest(p, source): one proposal per attempt */
#define KLOG MAXH                 /* distinct Cancelled(p, source) */
#define ALLS ((1 << NS) - 1)

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

/* ---- durable streams (outboxes): per (source, shard), dense task ids ---- */
byte tv[NC * NS * SLEN];  /* an event's failover version (>= 1); 0: a handover marker */
byte ta[NC * NS * SLEN];  /* event: its position in the workflow; marker: handover attempt index */
byte slen[NC * NS];

/* marker contents, one row per handover attempt (the same on every shard but the vector) */
byte hsrc[MAXH];          /* source cluster */
byte hsv[MAXH];           /* source's version */
byte hp[MAXH];            /* proposed version */
byte htg[MAXH];           /* target */
byte hvv[MAXH * NC * NS]; /* version vector: source's next task id applied from X on shard s */
byte nh;                  /* attempts started */

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

/* scratch, meaningful only inside one d_step */
hidden byte h_p, h_v, h_f, h_i, h_x, h_s, h_k, h_c, h_d;

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
  nlog++
}

inline append_task(c, s, a, v) {
  h_i = slen[CS(c, s)];
  assert(h_i < SLEN);  /* bound */
  ta[TASK(c, s, h_i)] = a; tv[TASK(c, s, h_i)] = v;
  slen[CS(c, s)]++
}

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
#define CAN_APPLY(c, src, s) (nxt[NX(c, src, s)] < slen[CS(src, s)] && \
        (tv[NEXT_TASK(c, src, s)] == 0 || ta[NEXT_TASK(c, src, s)] <= hl[CS(c, s)]))

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
  :: else -> marker_apply(c, s, ta[h_k])
  fi;
  nxt[NX(c, src, s)]++;
  check_invariants()
}

/* 3. Graceful handover start at a (operator): one atomic store write of the HANDOVER record and
 * a marker on every shard (store/), so no write is acknowledged after a marker. */
#define CAN_START(a, b) (nh < MAXH && W(a))
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
  rs[a] = HANDOVER; rp[a] = h_p; rl[a] = h_p; rq[a]++; rc[a] = 0;
  nh++;
  log_record(a);
  check_invariants()
}

/* 5. Activation at c (protocol/handover.*: activation condition): every shard's marker seen,
 * everything the source had applied from third clusters applied here, not decided, and no newer
 * record superseded the source; if one did, the proposal is decided CANCELLED instead. */
#define CAN_DECIDE(c) (pp[c] > dec[c] && pseen[c] == ALLS && (rv[c] > psv[c] || VV_OK(c)))

inline activate(c) {
  h_p = pp[c];
  printf("STEP decide at target %d: proposal %d (record version %d, source version %d)\n", c, h_p, rv[c], psv[c]);
  if
  :: rv[c] > psv[c] -> decide(c, h_p, CANCELLED, psrc[c]);    /* superseded */
#ifdef PROBE
     g_superseded = 1;
#endif
     printf("STEP   -> CANCELLED (superseded)\n")
  :: else ->
     decide(c, h_p, ACTIVATED, psrc[c]);
     printf("STEP   -> ACTIVATED: cluster %d active at version %d\n", c, h_p);
     amask[c] = amask[c] | PBIT(h_p);
     g_act = g_act | PBIT(h_p);
#if GRACEFUL
     for (h_s : 0 .. NS - 1) {                       /* P2: no acknowledged write lost */
       assert(hl[CS(c, h_s)] >= ackl[h_s]);  /* P2: no acknowledged write lost at activation */
       for (h_x : 0 .. HMAX - 1) {
         assert(h_x >= ackl[h_s] || hist[HI(c, h_s, h_x)] == ack[h_s * HMAX + h_x])  /* P2: no acknowledged write lost at activation */
       }
     };
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
#define CAN_RECORD(i, r) (i < nlog && (lv[i] > rv[r] || (lv[i] == rv[r] && lq[i] > rq[r])))
inline deliver_record(i, r) {
  printf("STEP record (active %d, version %d, seq %d, state %d) adopted by %d\n", OWNER(lv[i]), lv[i], lq[i], ls[i], r);
  ra[r] = OWNER(lv[i]); rv[r] = lv[i]; rs[r] = ls[i]; rq[r] = lq[i];
  rp[r] = lp[i]; rl[r] = ll[i]; rc[r] = 0;   /* cancel_requested is never set in a broadcast */
  check_invariants()
}

/* 10. Forced failover to c (operator; replicator/namespace_registry.*). */
#define CAN_FORCE(c) (nf < MAXF && !W(c))
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
  ra[c] = c; rv[c] = h_v; rs[c] = ACTIVE; rq[c] = 0; rp[c] = 0; rc[c] = 0;
  nf++;
  log_record(c);
  check_invariants()
}

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
#if GRACEFUL
    /* every cluster holds exactly the acknowledged history */
    for (h_s : 0 .. NS - 1) {
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

#if RLOG > 10 || CLOG > 3 || KLOG > 3
#error "bounds too large for the unrolled actions in init: add REC/CREQ/CANC lines"
#endif

init {
  byte c;
  d_step {
    for (c : 0 .. NC - 1) { ra[c] = 0; rv[c] = 1; rs[c] = ACTIVE; rq[c] = 0; rl[c] = 1 };
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
  FORCE(0) FORCE(1)
#if NC == 3
  FORCE(2)
#endif
  WRITE(0) WRITE(1)
#if NC == 3
  WRITE(2)
#endif
  :: timeout -> d_step { check_quiescent() }; break
  od
}
