"""The deployment node: a trained policy driving a robot in real time through the safety layer."""
