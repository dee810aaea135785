public enum SiloCLI {}
