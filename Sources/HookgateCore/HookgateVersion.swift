public enum HookgateVersion {
    /// Reported by `ping` and sent as `User-Agent: hookgate/<version>`.
    public static let current = "0.1.0"
}
