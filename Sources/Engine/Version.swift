/// The sdshell release this engine belongs to.
public enum SDShellVersion {
    public static let string = "0.1.0"
}
