using System.Net;
using k8s;
using k8s.Autorest;
using RaftKv.Operator.Controllers;
using RaftKv.Operator.Planning;
using RaftKv.Operator.Tuning;

namespace RaftKv.Operator.Tests.Integration;

/// <summary>
/// The Raft side of clusters without raftkv pods: a cluster forms, with its first member leading, once
/// its StatefulSet exists with replicas; membership changes and leadership transfers change the model.
/// Every call is recorded, so tests can check what the operator asked of the members.
/// </summary>
internal sealed class ModelRaftMembers(IKubernetes client) : IRaftMembers
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Model> _clusters = new(StringComparer.Ordinal);

    public List<string> Calls { get; } = [];

    public async Task<MemberObservation> ObserveAsync(MemberTarget target, CancellationToken cancellationToken)
    {
        var key = Key(target);
        lock (_lock)
        {
            if (_clusters.TryGetValue(key, out var known))
            {
                return known.Observation();
            }
        }

        int? replicas;
        try
        {
            replicas = (await client.AppsV1.ReadNamespacedStatefulSetAsync(target.Names.StatefulSet, target.Names.Namespace, cancellationToken: cancellationToken)).Spec.Replicas;
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return MemberObservation.Unreachable;
        }

        if (replicas is not > 0)
        {
            return MemberObservation.Unreachable;
        }

        lock (_lock)
        {
            var model = _clusters.TryGetValue(key, out var raced) ? raced : _clusters[key] = new Model(replicas.Value);
            Calls.Add($"{key}: formed with {replicas} member(s)");
            return model.Observation();
        }
    }

    public Task<ulong> AddLearnerAsync(MemberTarget target, string peerUrl, CancellationToken cancellationToken)
    {
        var ordinal = target.Names.OrdinalOf(new Uri(peerUrl).Host.Split('.')[0]) ?? throw new ArgumentException($"peer URL {peerUrl} names no pod of {target.Names.Name}");
        return Task.FromResult(Change(target, $"add learner {ordinal}", m => m.Add(ordinal)));
    }

    public Task PromoteAsync(MemberTarget target, ulong id, CancellationToken cancellationToken) =>
        Task.FromResult(Change(target, $"promote {id}", m => m.Promote(id)));

    public Task RemoveAsync(MemberTarget target, ulong id, CancellationToken cancellationToken) =>
        Task.FromResult(Change(target, $"remove {id}", m => m.Remove(id)));

    public Task MoveLeaderAsync(MemberTarget target, ulong toId, CancellationToken cancellationToken) =>
        Task.FromResult(Change(target, $"move leader to {toId}", m => m.Leader = toId));

    public Task<int> SetTimingAsync(MemberTarget target, RaftTiming timing, CancellationToken cancellationToken)
    {
        Change(target, $"set timing {timing}", m => m.Timing = timing);
        return Task.FromResult(target.Endpoints.Count);
    }

    /// <summary>The pod name of the member the model has as leader now (status.leader may lag it by one reconcile).</summary>
    public string LeaderPod(string ns, string name)
    {
        lock (_lock)
        {
            return _clusters.TryGetValue($"{ns}/{name}", out var model) && model.Members.FirstOrDefault(m => m.Id == model.Leader) is { } leader
                ? $"{name}-{leader.Ordinal}"
                : "none";
        }
    }

    public int Members(string ns, string name)
    {
        lock (_lock)
        {
            return _clusters.TryGetValue($"{ns}/{name}", out var model) ? model.Members.Count : 0;
        }
    }

    private ulong Change(MemberTarget target, string what, Func<Model, ulong> change)
    {
        lock (_lock)
        {
            var key = Key(target);
            var model = _clusters.GetValueOrDefault(key) ?? throw new InvalidOperationException($"{key} has not formed: the operator asked to {what}");
            Calls.Add($"{key}: {what}");
            return change(model);
        }
    }

    private ulong Change(MemberTarget target, string what, Action<Model> change) => Change(target, what, m =>
    {
        change(m);
        return 0UL;
    });

    private static string Key(MemberTarget target) => $"{target.Names.Namespace}/{target.Names.Name}";

    private sealed class Model
    {
        public Model(int replicas)
        {
            for (var i = 0; i < replicas; i++)
            {
                Members.Add(new ObservedMember(i, IdOf(i), IsLearner: false, Healthy: true, CaughtUp: true));
            }

            Leader = IdOf(0);
        }

        public List<ObservedMember> Members { get; } = [];

        public ulong Leader { get; set; }

        public RaftTiming? Timing { get; set; }

        public MemberObservation Observation() => new([.. Members], Leader, null, Timing, new HashSet<int>());

        public ulong Add(int ordinal)
        {
            Members.Add(new ObservedMember(ordinal, IdOf(ordinal), IsLearner: true, Healthy: true, CaughtUp: true));
            return IdOf(ordinal);
        }

        public void Promote(ulong id)
        {
            var i = Members.FindIndex(m => m.Id == id);
            Members[i] = Members[i] with { IsLearner = false };
        }

        public void Remove(ulong id) => Members.RemoveAll(m => m.Id == id);

        private static ulong IdOf(int ordinal) => 0x1000UL + (ulong)ordinal;
    }
}
