using RaftKv.Operator.Tuning;

namespace RaftKv.Operator.Planning;

/// <summary>
/// The one next step of a reconcile. Every step is safe on its own from the state it was planned in;
/// the reconciler executes it, observes again and plans the next one, so an operator restarted between
/// any two steps resumes from what it observes.
/// </summary>
internal abstract record PlanStep
{
    /// <summary>A sentence for logs, Events and the Progressing condition's message.</summary>
    public abstract string Describe();
}

/// <summary>Create the StatefulSet of the initial members, which form a new cluster together.</summary>
internal sealed record Bootstrap(int Replicas) : PlanStep
{
    public override string Describe() => $"bootstrap a new cluster of {Replicas} member(s)";
}

/// <summary>Create or update owned objects (Services, ConfigMaps, PodDisruptionBudget, StatefulSet template) to the builders' form.</summary>
/// <param name="Objects">Which objects.</param>
/// <param name="StatefulSetReplicas">The replica count a created or updated StatefulSet keeps.</param>
internal sealed record CreateObjects(IReadOnlyList<string> Objects, int StatefulSetReplicas) : PlanStep
{
    public override string Describe() => $"create or update {string.Join(", ", Objects)}";
}

/// <summary>Add member <paramref name="Member"/> to Raft as a non-voting learner (its pod starts after).</summary>
internal sealed record AddLearner(string Member, int Ordinal, string PeerUrl) : PlanStep
{
    public override string Describe() => $"add {Member} ({PeerUrl}) as a learner";
}

/// <summary>Set the StatefulSet's replica count (a pod appears for a new learner, or goes after its member was removed).</summary>
internal sealed record ScaleStatefulSet(int Replicas) : PlanStep
{
    public override string Describe() => $"scale the StatefulSet to {Replicas}";
}

/// <summary>Wait for a learner's log to catch up with the leader's.</summary>
internal sealed record WaitForCatchUp(string Member) : PlanStep
{
    public override string Describe() => $"wait for learner {Member} to catch up";
}

/// <summary>Make a caught-up learner a voter (one voter change).</summary>
internal sealed record PromoteLearner(string Member, ulong Id) : PlanStep
{
    public override string Describe() => $"promote learner {Member} to voter";
}

/// <summary>Hand leadership to another voter before the leader's member is removed or its pod restarted.</summary>
internal sealed record TransferLeadership(string From, string To, ulong ToId, string Why) : PlanStep
{
    public override string Describe() => $"transfer leadership from {From} to {To} ({Why})";
}

/// <summary>Remove a member from Raft (one voter change if it votes); its pod goes in a later step.</summary>
internal sealed record RemoveMember(string Member, ulong Id, string Why) : PlanStep
{
    public override string Describe() => $"remove member {Member} ({Why})";
}

/// <summary>
/// A member's volume was lost: its Raft state (term, vote, log) is gone, so it must not rejoin under its
/// old ID. Remove it, add it back as a learner under the same name, then delete its pod so it starts
/// afresh with an empty data dir and joins as that learner.
/// </summary>
internal sealed record RemoveAndReaddLostMember(string Member, ulong Id, int Ordinal, string PeerUrl) : PlanStep
{
    public override string Describe() => $"replace member {Member}, whose volume was lost: remove it and add it back as a learner";
}

/// <summary>Delete a pod so the StatefulSet recreates it from the current template (rolling update, one pod at a time).</summary>
internal sealed record RollPod(string Pod, int Ordinal) : PlanStep
{
    public override string Describe() => $"restart {Pod} on the current template";
}

/// <summary>Apply new Raft timing live on every member and record it in the tuning ConfigMap.</summary>
internal sealed record UpdateTuning(RaftTiming Timing, string Why) : PlanStep
{
    public override string Describe() => $"set heartbeat {GoDuration.Format(Timing.HeartbeatInterval)}, election {GoDuration.Format(Timing.ElectionTimeout)} ({Why})";
}

/// <summary>Nothing is safe to do now; look again later.</summary>
/// <param name="Reason">A CamelCase condition reason.</param>
/// <param name="Message">What is awaited, in words.</param>
internal sealed record Wait(string Reason, string Message) : PlanStep
{
    public override string Describe() => $"wait: {Message}";
}

/// <summary>The cluster is as specified.</summary>
internal sealed record Nothing : PlanStep
{
    public static Nothing Instance { get; } = new();

    public override string Describe() => "nothing to do: the cluster is as specified";
}
