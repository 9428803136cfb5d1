package daemon

import (
	"cmp"
	"fmt"
	"sync/atomic"

	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/caps"
)

// What the daemon keeps for each principal (by uid): its memory budget
// per user (Options.MaxMemPerUser), which its running guests, launched or
// spawned, and what they make the daemon hold are charged against, and
// its bound on handles in flight (Options.MaxInFlightPerUser).

// account is one principal's. Made at its first launch and kept: it is a
// few words, and charges that point at it (a byte object passed on,
// handles left in a queue) may outlive every guest of the principal. Its
// memory is counted without a lock: byte objects and channel buffers are
// charged as they grow and given back as they shrink, some with other
// locks held.
type account struct {
	used     atomic.Uint64
	budget   uint64 // Options.MaxMemPerUser; 0: none, and nothing is counted
	inflight *caps.InFlightLimit
}

// take charges amount, or reports what is held already when amount
// would take it past the budget.
func (a *account) take(amount uint64) (used uint64, ok bool) {
	if a.budget == 0 {
		return 0, true
	}
	for {
		used = a.used.Load()
		if used+amount > a.budget {
			return used, false
		}
		if a.used.CompareAndSwap(used, used+amount) {
			return used, true
		}
	}
}

// give gives back amount taken before.
func (a *account) give(amount uint64) {
	if a.budget != 0 {
		a.used.Add(-amount)
	}
}

// Take and Give make an account the caps.MemoryCharge of the byte
// objects (fd_create1) and the channels (fd_create2, chan grants) its
// guests make: what they make the daemon hold outside their linear
// memories counts against their user too.
func (a *account) Take(n int64) bool {
	_, ok := a.take(uint64(n))
	return ok
}

func (a *account) Give(n int64) { a.give(uint64(n)) }

// account returns the principal uid's account.
func (s *Supervisor) account(uid uint32) *account {
	s.accountsMu.Lock()
	defer s.accountsMu.Unlock()
	a := s.accounts[uid]
	if a == nil {
		a = &account{budget: s.memBudget, inflight: caps.NewInFlightLimit(s.maxInFlight)}
		s.accounts[uid] = a
	}
	return a
}

// memoryCharge is what the principal uid is charged for what its guests
// make the daemon hold (abi.GuestConfig.Memory, and the channels of its
// chan grants): nil without a budget per user.
func (s *Supervisor) memoryCharge(uid uint32) caps.MemoryCharge {
	if s.memBudget == 0 {
		return nil
	}
	return s.account(uid)
}

// MemoryChargeOf is the principal uid's memory budget
// (Options.MaxMemPerUser) for what the daemon holds for its guests beside
// them, as it grows and shrinks (the output a guest's launcher keeps for
// it, say): Take refuses what would pass the budget. nil without a budget
// per user.
func (s *Supervisor) MemoryChargeOf(uid uint32) caps.MemoryCharge { return s.memoryCharge(uid) }

// spawnCharge charges the guests a launched guest's tree spawns to its
// principal's budget, each as much as the launched guest: a child has its
// parent's memory limit and stack bound (abi.GuestConfig.SpawnBudget).
type spawnCharge struct {
	a      *account
	amount uint64
}

func (c spawnCharge) Take() bool {
	_, ok := c.a.take(c.amount)
	return ok
}

func (c spawnCharge) Give() { c.a.give(c.amount) }

// spawnBudget is the abi.GuestConfig.SpawnBudget of g: nil without a
// budget per user.
func (s *Supervisor) spawnBudget(g *Guest) abi.SpawnBudget {
	if s.memBudget == 0 {
		return nil
	}
	return spawnCharge{a: g.account, amount: g.charge}
}

// MemoryCharge is what a guest launched with spec counts against its
// principal's Options.MaxMemPerUser: its memory limit (MaxMemoryLimit
// when none) and its call-stack bound (the supervisor's default when
// none). Each guest it spawns is charged as much while it runs: a spawn
// past the budget fails with ENOMEM.
func (s *Supervisor) MemoryCharge(spec LaunchSpec) uint64 {
	return cmp.Or(spec.MemoryLimit, MaxMemoryLimit) + cmp.Or(spec.MaxStack, s.maxStack)
}

// stdinCharge is what the stdin of spec counts against its principal's
// Options.MaxMemPerUser while the guest runs: its size when the daemon
// holds it in memory (a launch's stdin, up to 1 MiB, as a *bytes.Reader),
// which it does until the guest ends. A stream (launch -i) holds a chunk
// at a time, 32 KiB, not counted.
func stdinCharge(spec LaunchSpec) uint64 {
	if r, ok := spec.Stdin.(interface{ Size() int64 }); ok && r.Size() > 0 {
		return uint64(r.Size())
	}
	return 0
}

// MemoryInUse is the sum of the charges (MemoryCharge) of the running
// guests of the principal uid and of the byte objects and channel bytes
// they hold (Options.MaxMemPerUser); 0 when the supervisor has no
// Options.MaxMemPerUser.
func (s *Supervisor) MemoryInUse(uid uint32) uint64 { return s.account(uid).used.Load() }

// BudgetError is a launch refused because its principal's running guests
// and it would take more memory than Options.MaxMemPerUser.
type BudgetError struct {
	Principal           Principal
	Budget, Used, Asked uint64
	// Stdin is the part of Asked that is the launch's stdin.
	Stdin uint64
}

func (e *BudgetError) Error() string {
	what, smaller := "its --mem and --max-stack", "a smaller --mem"
	if e.Stdin > 0 {
		what = fmt.Sprintf("its --mem, --max-stack and %s of stdin", abi.SizeText(e.Stdin))
		smaller = "a smaller --mem or less stdin"
	}
	if e.Used == 0 {
		return fmt.Sprintf("this launch asks %s (%s), more than the daemon's memory budget per user (serve --max-mem-per-user %s): launch with %s",
			abi.SizeText(e.Asked), what, abi.SizeText(e.Budget), smaller)
	}
	return fmt.Sprintf("%s's running guests hold %s of the daemon's memory budget per user (serve --max-mem-per-user %s), and this launch asks %s more (%s): end some of them, or launch with %s",
		e.Principal, abi.SizeText(e.Used), abi.SizeText(e.Budget), abi.SizeText(e.Asked), what, smaller)
}
