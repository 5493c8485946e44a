"""BPMN: the engine adapter (the only code that imports SpiffWorkflow), its script sandbox, deploying and running
process instances, userTask forms and the diagram renderer."""
