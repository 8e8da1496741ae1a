use crate::fixture::Project;

#[test]
fn list_on_an_empty_project_says_so_and_creates_nothing() {
    let project = Project::new();
    project
        .cmd(&["credits", "limits", "list"])
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "No model rate-limit profiles configured",
        ));
    assert!(!project.exists(".specsmith"));
}
