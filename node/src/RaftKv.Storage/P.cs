namespace RaftKv.Storage; internal static class Placeholder { }
