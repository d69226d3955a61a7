// Each cluster test starts three members with real timers; run side by side on a 2-core machine they starve each
// other's heartbeats into leader changes, and a proposal caught in a leader change times out as it does in etcd.
// One test class at a time keeps the timing the tests assume.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
