package daemon

import (
	"cmp"
	"fmt"
	"sync/atomic"

	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/caps"
)

// The daemon's memory budget per user (Options.MaxMemPerUser): what each
// running guest is charged, launched or spawned, against its principal's
// budget.

// userMemory is what one principal holds of its budget. It is counted
// without a lock: byte objects and channel buffers are charged as they
// grow and given back as they shrink, some with other locks held.
type userMemory struct{ used atomic.Uint64 }

// take charges amount, or reports what is held already when amount
// would take it past budget.
func (u *userMemory) take(amount, budget uint64) (used uint64, ok bool) {
	for {
		used = u.used.Load()
		if used+amount > budget {
			return used, false
		}
		if u.used.CompareAndSwap(used, used+amount) {
			return used, true
		}
	}
}

func (u *userMemory) give(amount uint64) { u.used.Add(-amount) }

// userMem returns uid's account, made at its first use and kept: it is a
// word, and the charges that point at it may outlive every guest of uid.
func (s *Supervisor) userMem(uid uint32) *userMemory {
	s.memMu.Lock()
	defer s.memMu.Unlock()
	u := s.memUsed[uid]
	if u == nil {
		u = &userMemory{}
		s.memUsed[uid] = u
	}
	return u
}

// takeCharge charges amount to uid's budget, or reports what uid's
// running guests hold already when amount would take it past the budget.
func (s *Supervisor) takeCharge(uid uint32, amount uint64) (used uint64, ok bool) {
	if s.memBudget == 0 {
		return 0, true
	}
	return s.userMem(uid).take(amount, s.memBudget)
}

// giveCharge gives back amount of uid's budget.
func (s *Supervisor) giveCharge(uid uint32, amount uint64) {
	if s.memBudget == 0 {
		return
	}
	s.userMem(uid).give(amount)
}

// releaseCharge gives back what g took of its principal's budget.
func (s *Supervisor) releaseCharge(g *Guest) { s.giveCharge(g.principal.UID, g.charge) }

// spawnCharge charges the guests a launched guest's tree spawns to its
// principal's budget, each as much as the launched guest: a child has its
// parent's memory limit and stack bound (abi.GuestConfig.SpawnBudget).
type spawnCharge struct {
	s      *Supervisor
	uid    uint32
	amount uint64
}

func (c spawnCharge) Take() bool {
	_, ok := c.s.takeCharge(c.uid, c.amount)
	return ok
}

func (c spawnCharge) Give() { c.s.giveCharge(c.uid, c.amount) }

// userCharge charges what a principal's guests make the daemon hold
// outside their linear memories to its budget (caps.MemoryCharge): the
// byte objects (fd_create1) and the message buffers of the channels
// (fd_create2) they make, so that these count against that user too.
type userCharge struct {
	u      *userMemory
	budget uint64
}

func (c userCharge) Take(n int64) bool {
	_, ok := c.u.take(uint64(n), c.budget)
	return ok
}

func (c userCharge) Give(n int64) { c.u.give(uint64(n)) }

// memoryCharge is what the principal uid is charged for what its guests
// make the daemon hold (abi.GuestConfig.Memory, and the channels of its
// chan grants): nil without a budget per user.
func (s *Supervisor) memoryCharge(uid uint32) caps.MemoryCharge {
	if s.memBudget == 0 {
		return nil
	}
	return userCharge{u: s.userMem(uid), budget: s.memBudget}
}

// spawnBudget is the abi.GuestConfig.SpawnBudget of g: nil without a
// budget per user.
func (s *Supervisor) spawnBudget(g *Guest) abi.SpawnBudget {
	if s.memBudget == 0 {
		return nil
	}
	return spawnCharge{s: s, uid: g.principal.UID, amount: g.charge}
}

// MemoryCharge is what a guest launched with spec counts against its
// principal's Options.MaxMemPerUser: its memory limit (MaxMemoryLimit
// when none) and its call-stack bound (the supervisor's default when
// none). Each guest it spawns is charged as much while it runs: a spawn
// past the budget fails with ENOMEM.
func (s *Supervisor) MemoryCharge(spec LaunchSpec) uint64 {
	return cmp.Or(spec.MemoryLimit, MaxMemoryLimit) + cmp.Or(spec.MaxStack, s.maxStack)
}

// MemoryInUse is the sum of the charges (MemoryCharge) of the running
// guests of the principal uid and of the byte objects and channel bytes
// they hold (Options.MaxMemPerUser); 0 when the supervisor has no
// Options.MaxMemPerUser.
func (s *Supervisor) MemoryInUse(uid uint32) uint64 {
	if s.memBudget == 0 {
		return 0
	}
	return s.userMem(uid).used.Load()
}

// inFlightLimit returns the principal uid's bound on handles in flight
// (Options.MaxInFlightPerUser), which all its guests share. A principal
// keeps it once made: it is a few words, and a principal's guests may
// leave handles in flight after they end.
func (s *Supervisor) inFlightLimit(uid uint32) *caps.InFlightLimit {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.inflight[uid]
	if l == nil {
		l = caps.NewInFlightLimit(s.maxInFlight)
		s.inflight[uid] = l
	}
	return l
}

// InFlight returns how many handles the guests of the principal uid have
// sent on channels that nobody has received yet, and the bound on it.
func (s *Supervisor) InFlight(uid uint32) (n, max int) {
	l := s.inFlightLimit(uid)
	return l.InFlight(), l.Max()
}

// BudgetError is a launch refused because its principal's running guests
// and it would take more memory than Options.MaxMemPerUser.
type BudgetError struct {
	Principal           Principal
	Budget, Used, Asked uint64
}

func (e *BudgetError) Error() string {
	if e.Used == 0 {
		return fmt.Sprintf("this launch asks %s (its --mem and --max-stack), more than the daemon's memory budget per user (serve --max-mem-per-user %s): launch with a smaller --mem",
			abi.SizeText(e.Asked), abi.SizeText(e.Budget))
	}
	return fmt.Sprintf("%s's running guests hold %s of the daemon's memory budget per user (serve --max-mem-per-user %s), and this launch asks %s more (its --mem and --max-stack): end some of them, or launch with a smaller --mem",
		e.Principal, abi.SizeText(e.Used), abi.SizeText(e.Budget), abi.SizeText(e.Asked))
}
