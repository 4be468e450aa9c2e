/// The axes `sweep.seeds` makes: replicates of the same recipe, which a report
/// treats as training randomness rather than as settings to compare. The spec's sweep
/// names its variants with them, and the plan and the report read those names.
public enum Replication {
    /// The seed of every trained stage that is not a teacher.
    public static let studentAxis = "seed"
    /// The seed of every trained teacher.
    public static let teacherAxis = "teacher_seed"
    public static let axes: Set<String> = [studentAxis, teacherAxis]
}
