/*
 * handover_broken.pml -- handover.pml with one deliberate bug, which spin must find.
 *
 * BUG: the source of a graceful handover, on its own timeout (or an operator's cancel), leaves
 * HANDOVER and resumes ACTIVE at once, sending CancelRequest(p) to the target but not waiting
 * for the target's decision. If the target has already activated p, or activates it before the
 * CancelRequest arrives, two clusters accept writes (P1) and p is both activated and resumed
 * from (P3). See the `#ifdef BROKEN` block in handover.pml (cancel) and models/README.md.
 */
#define BROKEN 1
#include "handover.pml"
