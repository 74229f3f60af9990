// C4 filter transforms (lifting and P4) and their adjoints.
