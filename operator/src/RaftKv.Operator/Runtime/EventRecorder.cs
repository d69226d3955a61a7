using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace RaftKv.Operator.Runtime;

/// <summary>Records core/v1 Events about an object (what <c>kubectl describe</c> and <c>kubectl get events</c> show).</summary>
internal interface IEventRecorder
{
    /// <summary><paramref name="type"/> is <c>Normal</c> or <c>Warning</c>; <paramref name="reason"/> is CamelCase.</summary>
    Task RecordAsync(IKubernetesObject<V1ObjectMeta> about, string type, string reason, string message, CancellationToken cancellationToken);
}

/// <summary>Writes core/v1 Events; a failure to write one is logged and never fails the reconcile.</summary>
internal sealed partial class EventRecorder(IKubernetes client, string component, string instance, TimeProvider time, ILogger<EventRecorder> logger) : IEventRecorder
{
    public async Task RecordAsync(IKubernetesObject<V1ObjectMeta> about, string type, string reason, string message, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var ns = about.Metadata.NamespaceProperty ?? "default";
        var evt = new Corev1Event
        {
            Metadata = new V1ObjectMeta { GenerateName = $"{about.Metadata.Name}.", NamespaceProperty = ns },
            InvolvedObject = new V1ObjectReference
            {
                ApiVersion = about.ApiVersion,
                Kind = about.Kind,
                Name = about.Metadata.Name,
                NamespaceProperty = ns,
                Uid = about.Metadata.Uid,
                ResourceVersion = about.Metadata.ResourceVersion,
            },
            Type = type,
            Reason = reason,
            // The API server limits an Event's message to 1 KiB.
            Message = message.Length > 1024 ? message[..1021] + "..." : message,
            Source = new V1EventSource { Component = component },
            ReportingComponent = component,
            ReportingInstance = instance,
            FirstTimestamp = now,
            LastTimestamp = now,
            EventTime = now,
            Action = reason,
            Count = 1,
        };
        try
        {
            await client.CoreV1.CreateNamespacedEventAsync(evt, ns, cancellationToken: cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
#pragma warning disable CA1031 // Events are informative: losing one must not fail the step that caused it.
        catch (Exception e)
#pragma warning restore CA1031
        {
            LogEventFailed(e, reason, about.Kind, ns, about.Metadata.Name);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not record Event {Reason} on {Kind} {Namespace}/{Name}")]
    private partial void LogEventFailed(Exception exception, string reason, string kind, string @namespace, string name);
}
